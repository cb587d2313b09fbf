/**
 * The per-client counts shared by every host of a fleet, in Redis (through ioredis, loaded with
 * the first count). Each count is one Lua script, so two hosts never race on a
 * read-modify-write; each of them is one round trip, and the counts of one new connection (its
 * address, its network, its rate) go out together in one pipeline.
 *
 * Open connections are counted per host (one field per host in a hash per key) and summed over
 * the hosts whose lease is fresh: each host renews its lease every third of `leaseMs`, so the
 * connections of a host that died (`kill -9`, a lost machine) stop counting within `leaseMs`, and
 * its fields are dropped by the next script that meets them. Events (connections, AUTH failures)
 * are a sorted set per key in a sliding window. Every key expires on its own: nothing is left
 * behind when the fleet stops.
 *
 * When Redis does not answer within `timeoutMs` (down, slow, unreachable), the store fails open
 * by default: the decision is made by this process's own counts, one warning is logged per
 * minute, and `fallbacks` counts it (`sirocco_limit_store_fallbacks_total`); with
 * `failClosed`, every new client is refused until Redis is back. The greeting never waits past
 * `timeoutMs` for Redis.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ConnectionOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import { MemoryLimitStore, type LimitStore } from '../app/limit-store.js';

/** Events kept per key, as the memory store keeps them: counts saturate here. */
const MAX_EVENTS = 10_000;
/** At most one warning per this many milliseconds while Redis does not answer. */
const WARN_EVERY = 60_000;

/** One connection more (`delta` 1) or less (-1) on this host; the live hosts' sum. */
const OPEN = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], lease * 10)
local mine = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[3])
if mine <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
local total = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local seen = redis.call('ZSCORE', KEYS[2], fields[i])
  if seen and tonumber(seen) > now - lease then total = total + tonumber(fields[i + 1])
  else redis.call('HDEL', KEYS[1], fields[i]) end
end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], lease * 2) end
return total`;

/** One event now (`ARGV[3]` 1) or none (0): the events in the window. */
const EVENTS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if ARGV[3] == '1' and n < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  n = n + 1
end
if n == 0 then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], window) end
return n`;

/** This host's lease, and the expiry of the open counts it holds. */
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - lease * 10)
redis.call('PEXPIRE', KEYS[1], lease * 10)
for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], lease * 2) end
return 1`;

interface Scripts {
  siroccoOpen(open: string, hosts: string, host: string, lease: number, delta: number): Promise<number>;
  siroccoEvents(key: string, window: number, member: string, add: number, max: number): Promise<number>;
  siroccoRenew(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
}

/**
 * How to reach Redis, and how the store behaves without it.
 *
 * @example
 * ```ts
 * const options: RedisLimitStoreOptions = { url: 'rediss://:secret@redis.internal:6380/0', prefix: 'mx-eu:', failClosed: false };
 * ```
 */
export interface RedisLimitStoreOptions {
  /** `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. */
  readonly url: string;
  /** Put before every key, so several fleets share one Redis. Default `sirocco:`. */
  readonly prefix?: string | undefined;
  /** Milliseconds a dead host's connections keep counting. Default 30 000. */
  readonly leaseMs?: number | undefined;
  /** Milliseconds a decision waits for Redis before it is made without it. Default 250. */
  readonly timeoutMs?: number | undefined;
  /** Refuse new clients while Redis does not answer, instead of counting locally. Default false. */
  readonly failClosed?: boolean | undefined;
  /** TLS options for `rediss://` (a private CA, a client certificate). */
  readonly tls?: ConnectionOptions;
  /** Where the warnings go; default: none. */
  readonly logger?: Logger;
}

/**
 * A {@link LimitStore} in Redis, shared by every host (and every worker) that names the same
 * Redis and prefix.
 *
 * @example
 * ```ts
 * const limitStore = new RedisLimitStore({ url: 'redis://10.0.0.5:6379', prefix: 'mx:' });
 * await new Application(Inbound, { limitStore, maxConnectionsPerIp: 10 }).listen(25);
 * ```
 */
export class RedisLimitStore implements LimitStore {
  readonly #options: RedisLimitStoreOptions;
  readonly #prefix: string;
  readonly #lease: number;
  readonly #timeout: number;
  /** This process, as the hosts' hash fields name it. */
  readonly #host = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  readonly #local = new MemoryLimitStore();
  /** Open counts this process took from the local store (Redis did not answer): given back there. */
  readonly #localOpen = new Map<string, number>();
  /** Keys this process holds open counts on in Redis, and how many: their expiry is renewed. */
  readonly #held = new Map<string, number>();
  #client: Promise<Redis> | undefined;
  #renewal: NodeJS.Timeout | undefined;
  #events = 0;
  #fallbacks = 0;
  #warned = 0;
  #closed = false;
  /** Whether the connection was ever ready: once lost, decisions do not wait for it. */
  #everReady = false;
  #firstReady: Promise<void> | undefined;

  constructor(options: RedisLimitStoreOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new RangeError(`RedisLimitStore: url must start with redis:// or rediss://, got ${url.protocol}//`);
    }
    this.#options = options;
    this.#prefix = options.prefix ?? 'sirocco:';
    this.#lease = options.leaseMs ?? 30_000;
    this.#timeout = options.timeoutMs ?? 250;
    if (!Number.isInteger(this.#lease) || this.#lease < 1000)
      throw new RangeError('RedisLimitStore: leaseMs must be a whole number of at least 1000');
    if (!Number.isInteger(this.#timeout) || this.#timeout < 1)
      throw new RangeError('RedisLimitStore: timeoutMs must be a whole number of at least 1');
    // Connected at once, so the first clients are counted in Redis, not left to this process.
    this.#client = this.#connect();
    this.#client.catch((err: unknown) => this.#warn('connect', err));
  }

  /**
   * A store from a URL alone, as `--limit-store` takes it: `redis://` or `rediss://`, with the
   * options as query parameters (`prefix`, `lease` and `timeout` in milliseconds, `fail=closed`),
   * which are not passed on to Redis. Throws a `RangeError` naming a bad one.
   *
   * @example
   * ```ts
   * const store = RedisLimitStore.fromUrl('redis://10.0.0.5:6379/0?prefix=mx-eu:&fail=closed', logger);
   * ```
   */
  static fromUrl(text: string, logger?: Logger): RedisLimitStore {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new RangeError(`not a URL: ${JSON.stringify(text)}`);
    }
    const query = url.searchParams;
    const number = (name: string): number | undefined => {
      const value = query.get(name);
      if (value === null) return undefined;
      if (!/^\d+$/.test(value)) throw new RangeError(`${name} must be a whole number of milliseconds, got ${JSON.stringify(value)}`);
      return Number(value);
    };
    const fail = query.get('fail') ?? 'open';
    if (fail !== 'open' && fail !== 'closed') throw new RangeError(`fail must be open or closed, got ${JSON.stringify(fail)}`);
    for (const name of query.keys()) {
      if (!['prefix', 'lease', 'timeout', 'fail'].includes(name))
        throw new RangeError(`unknown parameter ${name} (prefix, lease, timeout, fail)`);
    }
    const options: RedisLimitStoreOptions = {
      url: `${url.protocol}//${url.username === '' && url.password === '' ? '' : `${url.username}:${url.password}@`}${url.host}${url.pathname}`,
      prefix: query.get('prefix') ?? undefined,
      leaseMs: number('lease'),
      timeoutMs: number('timeout'),
      failClosed: fail === 'closed',
      ...(logger === undefined ? {} : { logger }),
    };
    return new RedisLimitStore(options);
  }

  /** Where the store is, as `--limit-store` takes it, its password masked: what `--check-config` prints. */
  toJSON(): string {
    const url = new URL(this.#options.url);
    if (url.password !== '') url.password = '****';
    const fail = this.#options.failClosed === true ? 'closed' : 'open';
    return `${url.href}?prefix=${this.#prefix}&lease=${this.#lease}&timeout=${this.#timeout}&fail=${fail}`;
  }

  /** Decisions made without Redis (it did not answer in time), since the start. */
  get fallbacks(): number {
    return this.#fallbacks;
  }

  acquire(key: string): Promise<number> {
    return this.#decide(
      'acquire',
      async (redis) => {
        const n = await redis.siroccoOpen(this.#key(`open:${key}`), this.#key('hosts'), this.#host, this.#lease, 1);
        this.#held.set(key, (this.#held.get(key) ?? 0) + 1);
        return n;
      },
      () => {
        this.#localOpen.set(key, (this.#localOpen.get(key) ?? 0) + 1);
        return this.#local.acquire(key);
      },
      // An acquire that answered after its deadline is taken back, or this host would hold it for ever.
      () => void this.#release(key),
    );
  }

  release(key: string): Promise<void> {
    const local = this.#localOpen.get(key) ?? 0;
    if (local > 0) {
      if (local === 1) this.#localOpen.delete(key);
      else this.#localOpen.set(key, local - 1);
      this.#local.release(key);
      return Promise.resolve();
    }
    return this.#release(key);
  }

  hit(key: string, windowMs: number): Promise<number> {
    const member = `${this.#host}:${++this.#events}`;
    return this.#decide(
      'hit',
      (redis) => redis.siroccoEvents(this.#key(`events:${key}`), windowMs, member, 1, MAX_EVENTS),
      () => this.#local.hit(key, windowMs),
    );
  }

  count(key: string, windowMs: number): Promise<number> {
    return this.#decide(
      'count',
      (redis) => redis.siroccoEvents(this.#key(`events:${key}`), windowMs, '', 0, MAX_EVENTS),
      () => this.#local.count(key, windowMs),
    );
  }

  /** Stops renewing this host's lease and closes the connection to Redis. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#renewal);
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) (await client.catch(() => undefined))?.disconnect();
  }

  #key(name: string): string {
    return `${this.#prefix}${name}`;
  }

  async #release(key: string): Promise<void> {
    const held = this.#held.get(key) ?? 0;
    if (held <= 1) this.#held.delete(key);
    else this.#held.set(key, held - 1);
    try {
      const redis = (await this.#redis()) as Redis & Scripts;
      await redis.siroccoOpen(this.#key(`open:${key}`), this.#key('hosts'), this.#host, this.#lease, -1);
    } catch {
      // Redis is away: this host's count for the key lapses with its lease or the key's expiry.
    }
  }

  /**
   * Asks Redis, or, past the deadline or on an error, the local store (or refuses, failing
   * closed). `late` runs when Redis answers after the deadline.
   */
  async #decide(op: string, ask: (redis: Redis & Scripts) => Promise<number>, alone: () => number, late?: () => void): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const asked = this.#redis().then((redis) => ask(redis as Redis & Scripts));
    // A late failure is nobody's: the decision was made without it.
    asked.catch(() => undefined);
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#timeout);
    });
    try {
      const answer = await Promise.race([asked, deadline]);
      if (answer !== 'timeout') return answer;
      if (late !== undefined) asked.then(late, () => undefined);
      return this.#without(op, new Error(`no answer within ${this.#timeout} ms`), alone);
    } catch (err) {
      return this.#without(op, err, alone);
    } finally {
      clearTimeout(timer);
    }
  }

  #without(op: string, err: unknown, alone: () => number): number {
    this.#fallbacks++;
    this.#warn(op, err);
    return this.#options.failClosed === true ? Number.MAX_SAFE_INTEGER : alone();
  }

  /** One warning per minute at most while Redis is away. */
  #warn(op: string, err: unknown): void {
    const now = Date.now();
    if (now - this.#warned < WARN_EVERY) return;
    this.#warned = now;
    const failClosed = this.#options.failClosed === true;
    this.#options.logger?.warn(
      { op, err: (err as Error).message, failClosed },
      failClosed ? 'Redis limit store not answering; refusing new clients' : 'Redis limit store not answering; counting in this process',
    );
  }

  /**
   * The client, once it can take a command: at once when connected; while it makes its first
   * connection, when that is made (the decision's deadline bounds the wait); after it was lost,
   * not at all (the decision is made without Redis now, not after a wait).
   */
  async #redis(): Promise<Redis> {
    const client = this.#client;
    if (this.#closed || client === undefined) throw new Error('RedisLimitStore is closed');
    const redis = await client;
    if (redis.status === 'ready') return redis;
    if (this.#everReady) throw new Error(`Redis connection ${redis.status}`);
    this.#firstReady ??= new Promise((resolve) => redis.once('ready', () => resolve()));
    await this.#firstReady;
    return redis;
  }

  async #connect(): Promise<Redis> {
    const { Redis: Client } = await import('ioredis');
    const redis = new Client(this.#options.url, {
      // A command while disconnected fails at once (the store decides without Redis), rather than waiting in a queue.
      enableOfflineQueue: false,
      // The counts of one new connection (address, network, rate) leave in one write, one round trip.
      enableAutoPipelining: true,
      maxRetriesPerRequest: 1,
      retryStrategy: (times: number) => Math.min(100 * times, 2000),
      ...(this.#options.tls === undefined ? {} : { tls: this.#options.tls }),
    });
    redis.on('error', (err: Error) => this.#warn('connect', err));
    redis.on('ready', () => (this.#everReady = true));
    redis.defineCommand('siroccoOpen', { numberOfKeys: 2, lua: OPEN });
    redis.defineCommand('siroccoEvents', { numberOfKeys: 1, lua: EVENTS });
    redis.defineCommand('siroccoRenew', { lua: RENEW });
    this.#renewal = setInterval(() => this.#renew(redis as Redis & Scripts), Math.max(100, Math.floor(this.#lease / 3)));
    this.#renewal.unref();
    return redis;
  }

  #renew(redis: Redis & Scripts): void {
    const keys = [...this.#held.keys()].map((key) => this.#key(`open:${key}`));
    redis.siroccoRenew(1 + keys.length, this.#key('hosts'), ...keys, this.#host, this.#lease).catch(() => undefined);
  }
}
