/**
 * Abuse controls per client, for every protocol of the connection kit: open connections per
 * client and per network, new connections per client in a time window, and password checks per
 * client in the window (the failed ones, and the ones still running). The counts live in a
 * {@link LimitStore}, so every worker of `start(n)` (or every host, with a shared store) sees the
 * same ones. A client in `limitExempt` (loopback by default) is not counted.
 *
 * A client is its address, except that an IPv6 client is its prefix (`ipv6PrefixLength`, /64 by
 * default): one host holds a whole /64 and can rotate through it. A client whose address is not
 * known (`''`: a proxy said `UNKNOWN`) is counted as one client, `unknown`, and is never exempt;
 * a client on a local Unix socket (`null`) is not counted.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { LimitStore } from '../app/limit-store.js';
import { andThen, type Maybe } from '../app/maybe.js';
import type { TrustedPeers } from '../app/trusted-peers.js';
import { REPLIES } from '../protocol/replies.js';
import type { Reply } from '../protocol/reply.js';

/** The settings the limits read: the same names for SMTP and POP3. */
export interface LimitSettings {
  readonly maxConnectionsPerIp: number;
  readonly maxConnectionsPerNet: number;
  readonly connectionRatePerIp: number;
  readonly authFailuresPerIp: number;
  readonly limitWindow: number;
  readonly ipv6PrefixLength: number;
}

/** A client let in: its counts, to give back when the connection ends. */
export interface Admission {
  release(): void;
}

/** A client turned away: the reply, and which limit it passed. */
export interface Refusal {
  readonly refusal: Reply;
  readonly why: string;
}

/**
 * A password check under way for a client: while it runs it counts as a failure would, so that
 * parallel guesses cannot all pass the limit before the first one fails.
 */
export interface AuthSlot {
  /** The check failed: counted as a failure in the window, and the slot given back. */
  failed(): void;
  /** The check ended otherwise (success, a temporary error, the client left): the slot given back. */
  done(): void;
}

const NOTHING: Admission = { release: () => undefined };
const FREE: AuthSlot = { failed: () => undefined, done: () => undefined };

export class ClientLimits {
  readonly #store: LimitStore;
  readonly #settings: LimitSettings;
  readonly #exempt: TrustedPeers;
  /** What the connection counts' keys start with: each protocol counts its own connections. */
  readonly #scope: string;

  /**
   * @param scope what this server's connection counts are kept under (`'pop3'`); password
   *   failures are kept under one key per client whatever the protocol, so a guesser gains
   *   nothing by moving from SMTP AUTH to POP3.
   */
  constructor(store: LimitStore, settings: LimitSettings, exempt: TrustedPeers, scope = '') {
    this.#store = store;
    this.#settings = settings;
    this.#exempt = exempt;
    this.#scope = scope === '' ? '' : `${scope}:`;
  }

  /** Whether a client is left alone: a local Unix socket client (`null`), or an address in `limitExempt`. */
  #exempted(address: string | null): address is null {
    return address === null || (address !== '' && this.#exempt.has(address));
  }

  /** Lets a client in (its counts taken), or the refusal to send it; at once when the store answers at once. */
  admit(address: string | null): Maybe<Admission | Refusal> {
    const s = this.#settings;
    if (this.#exempted(address)) return NOTHING;
    const client = clientKey(address, s.ipv6PrefixLength);
    const scope = this.#scope;
    const ip = `${scope}ip:${client}`;
    const net = `${scope}net:${address === '' ? 'unknown' : network(address)}`;
    const store = this.#store;
    const perIp = store.acquire(ip);
    const perNet = store.acquire(net);
    const rate = s.connectionRatePerIp === 0 ? 0 : store.hit(`${scope}rate:${client}`, s.limitWindow);
    const judge = (a: number, b: number, c: number): Admission | Refusal => {
      const release = (): void => {
        void store.release(ip);
        void store.release(net);
      };
      const why =
        s.maxConnectionsPerIp > 0 && a > s.maxConnectionsPerIp
          ? 'maxConnectionsPerIp'
          : s.maxConnectionsPerNet > 0 && b > s.maxConnectionsPerNet
            ? 'maxConnectionsPerNet'
            : s.connectionRatePerIp > 0 && c > s.connectionRatePerIp
              ? 'connectionRatePerIp'
              : undefined;
      if (why === undefined) return { release };
      release();
      return { refusal: REPLIES.clientLimit(), why };
    };
    if (perIp instanceof Promise || perNet instanceof Promise || rate instanceof Promise) {
      return Promise.all([perIp, perNet, rate]).then(([a, b, c]) => judge(a, b, c));
    }
    return judge(perIp, perNet, rate);
  }

  /** Whether AUTH may start for this client: its failures and running checks under `authFailuresPerIp`. */
  authAllowed(address: string | null): Maybe<boolean> {
    const limit = this.#settings.authFailuresPerIp;
    if (limit === 0 || this.#exempted(address)) return true;
    const client = clientKey(address, this.#settings.ipv6PrefixLength);
    return andThen(this.#store.count(`authfail:${client}`, this.#settings.limitWindow), (n) => n < limit);
  }

  /**
   * A slot for one password check, or `null` when the client's failures in the window and its
   * checks still running already reach `authFailuresPerIp`: then no check is made.
   */
  authSlot(address: string | null): Maybe<AuthSlot | null> {
    const s = this.#settings;
    if (s.authFailuresPerIp === 0 || this.#exempted(address)) return FREE;
    const client = clientKey(address, s.ipv6PrefixLength);
    const store = this.#store;
    const running = `authcheck:${client}`;
    const failures = `authfail:${client}`;
    const inFlight = store.acquire(running);
    const failed = store.count(failures, s.limitWindow);
    const judge = (checks: number, fails: number): AuthSlot | null => {
      let open = true;
      const done = (): void => {
        if (!open) return;
        open = false;
        void store.release(running);
      };
      if (checks + fails > s.authFailuresPerIp) {
        done();
        return null;
      }
      return {
        done,
        failed: () => {
          if (!open) return;
          // Counted before the slot is given back, so no moment lets one more check through.
          void store.hit(failures, s.limitWindow);
          done();
        },
      };
    };
    if (inFlight instanceof Promise || failed instanceof Promise) return Promise.all([inFlight, failed]).then(([a, b]) => judge(a, b));
    return judge(inFlight, failed);
  }
}

/** Who a client is for the limits: its address, its IPv6 prefix, or `unknown`. */
export function clientKey(address: string, ipv6PrefixLength = 64): string {
  if (address === '') return 'unknown';
  if (ipv6PrefixLength >= 128 || !isIPv6(address) || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address)) return address;
  return ipv6Prefix(address, ipv6PrefixLength);
}

/** The client's network: `a.b.c.0/24` for IPv4, the first four groups `/64` for IPv6. */
export function network(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const v4 = mapped ?? address;
  if (isIPv4(v4)) return `${v4.slice(0, v4.lastIndexOf('.'))}.0/24`;
  if (!isIPv6(address)) return address;
  return ipv6Prefix(address, 64);
}

/** An IPv6 address's first `bits` bits, as `2001:db8:0:0::/64` (groups in lower case, no leading zeros). */
function ipv6Prefix(address: string, bits: number): string {
  const [head = '', tail] = address.toLowerCase().split('::');
  const front = head === '' ? [] : head.split(':');
  const back = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = (tail === undefined ? front : [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back]).map((g) =>
    parseInt(g, 16),
  );
  const kept = groups.map((g, i) => {
    const from = i * 16;
    if (from + 16 <= bits) return g;
    if (from >= bits) return 0;
    return g & (0xffff << (16 - (bits - from)));
  });
  const whole = Math.ceil(bits / 16);
  return `${kept
    .slice(0, Math.max(1, whole))
    .map((g) => g.toString(16))
    .join(':')}::/${bits}`;
}
