/**
 * The DNS lookups of mail authentication: through the `dnsServers` setting (or the system's),
 * each bounded in time, answers cached for a while so a burst of mail from one domain asks once.
 * SPF's own limits (10 lookups, 2 void ones per check, RFC 7208 §4.6.4) are counted by mailauth
 * over this resolver.
 */
import { Resolver } from 'node:dns/promises';

/** How long an answer is kept: DNS TTLs are not given by Node's resolver for every type, so one bound for all. */
const KEEP_MS = 5 * 60_000;
/** How long "no such name" or "no such record" is kept. */
const KEEP_MISSING_MS = 60_000;
/** Answers kept at most; past it the oldest go. */
const MAX_ENTRIES = 10_000;

/** A lookup as mailauth asks for it: a name and a record type, answered as `dns.promises.resolve` answers. */
export type Lookup = (name: string, type: string) => Promise<never[]>;

/** One cached answer, or the error it was. */
interface Entry {
  readonly until: number;
  readonly answer: Promise<never[]>;
}

/**
 * A cached, time-bounded resolver. `servers` as `address` or `address:port`; `timeoutMs` for one
 * query (two tries).
 */
export function cachedResolver(servers: readonly string[] | undefined, timeoutMs: number): Lookup {
  const resolver = new Resolver({ timeout: Math.max(1, Math.floor(timeoutMs / 2)), tries: 2 });
  if (servers !== undefined && servers.length > 0) resolver.setServers([...servers]);
  const cache = new Map<string, Entry>();
  return (name, type) => {
    const key = `${type} ${name.toLowerCase()}`;
    const now = Date.now();
    const kept = cache.get(key);
    if (kept !== undefined && kept.until > now) return kept.answer;
    cache.delete(key);
    const answer = resolver.resolve(name, type) as Promise<never[]>;
    cache.set(key, { until: now + KEEP_MS, answer });
    if (cache.size > MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
    answer.catch((err: NodeJS.ErrnoException) => {
      // A missing name or record is an answer too, kept a shorter while; a timeout or a refusal is not kept.
      if (err.code === 'ENOTFOUND' || err.code === 'ENODATA') cache.set(key, { until: Date.now() + KEEP_MISSING_MS, answer });
      else cache.delete(key);
    });
    return answer;
  };
}
