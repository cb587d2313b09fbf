/**
 * Abuse controls per client: open connections per address and per network (/24 for IPv4, /64
 * for IPv6), new connections per address in a time window, and failed AUTH attempts per address
 * in the window. The counts live in a {@link LimitStore}, so every worker of `start(n)` (or every
 * host, with a shared store) sees the same ones. A client in `limitExempt` (loopback by default)
 * is not counted.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { LimitStore } from '../app/limit-store.js';
import { andThen, type Maybe } from '../app/maybe.js';
import type { ApplicationSettings } from '../app/settings.js';
import type { TrustedPeers } from '../app/trusted-peers.js';
import { REPLIES } from '../protocol/replies.js';
import type { Reply } from '../protocol/reply.js';

/** A client let in: its counts, to give back when the connection ends. */
export interface Admission {
  release(): void;
}

/** A client turned away: the reply, and which limit it passed. */
export interface Refusal {
  readonly refusal: Reply;
  readonly why: string;
}

const NOTHING: Admission = { release: () => undefined };

export class ClientLimits {
  readonly #store: LimitStore;
  readonly #settings: ApplicationSettings;
  readonly #exempt: TrustedPeers;

  constructor(store: LimitStore, settings: ApplicationSettings, exempt: TrustedPeers) {
    this.#store = store;
    this.#settings = settings;
    this.#exempt = exempt;
  }

  /** Lets a client in (its counts taken), or the refusal to send it; at once when the store answers at once. */
  admit(address: string): Maybe<Admission | Refusal> {
    const s = this.#settings;
    if (address === '' || this.#exempt.has(address)) return NOTHING;
    const ip = `ip:${address}`;
    const net = `net:${network(address)}`;
    const store = this.#store;
    const perIp = store.acquire(ip);
    const perNet = store.acquire(net);
    const rate = s.connectionRatePerIp === 0 ? 0 : store.hit(`rate:${address}`, s.limitWindow);
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

  /** Whether AUTH may go on for this client: not past `authFailuresPerIp`. */
  authAllowed(address: string): Maybe<boolean> {
    const limit = this.#settings.authFailuresPerIp;
    if (limit === 0 || address === '' || this.#exempt.has(address)) return true;
    return andThen(this.#store.count(`authfail:${address}`, this.#settings.limitWindow), (n) => n < limit);
  }

  /** One failed AUTH attempt by this client. */
  authFailed(address: string): void {
    if (this.#settings.authFailuresPerIp === 0 || address === '' || this.#exempt.has(address)) return;
    void this.#store.hit(`authfail:${address}`, this.#settings.limitWindow);
  }
}

/** The client's network: `a.b.c.0/24` for IPv4, the first four groups `/64` for IPv6. */
export function network(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const v4 = mapped ?? address;
  if (isIPv4(v4)) return `${v4.slice(0, v4.lastIndexOf('.'))}.0/24`;
  if (!isIPv6(address)) return address;
  const [head = '', tail] = address.toLowerCase().split('::');
  const front = head === '' ? [] : head.split(':');
  const back = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? front : [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
