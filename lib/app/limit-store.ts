/**
 * Where the per-client limits keep their counts: open connections by key, and events (a
 * connection, an AUTH failure) in a sliding time window by key. Keys are like `ip:192.0.2.7` or
 * `net:192.0.2.0/24`. The in-memory store serves one process; under `start(n)` the workers share
 * the primary's (through node:cluster's messages); a store shared by several hosts implements
 * the same interface over a shared database (see the README).
 */

/** Events kept per key: counts saturate here. */
const MAX_EVENTS = 10_000;
/** Every this many hits, keys with no recent event are dropped. */
const SWEEP_EVERY = 1000;

/**
 * A store of counts. Every method may answer now or with a promise.
 *
 * @example
 * ```ts
 * const store: LimitStore = new MemoryLimitStore();
 * await store.acquire('ip:192.0.2.7'); // 1
 * ```
 */
export interface LimitStore {
  /** One more open connection for `key`: the count now, this one included. */
  acquire(key: string): number | Promise<number>;
  /** One connection for `key` ended. */
  release(key: string): void | Promise<void>;
  /** One more event for `key`: the count of events in the last `windowMs`, this one included. */
  hit(key: string, windowMs: number): number | Promise<number>;
  /** The count of events for `key` in the last `windowMs`, without adding one. */
  count(key: string, windowMs: number): number | Promise<number>;
  /**
   * A shared store: the decisions it could not make in time and left to this process (or
   * refused), since the start; served as `sirocco_limit_store_fallbacks_total`.
   */
  readonly fallbacks?: number;
}

/**
 * The default store: counts in this process's memory, forgetting keys that fall to zero and
 * events older than their window.
 *
 * @example
 * ```ts
 * new Application(Inbound, { limitStore: new MemoryLimitStore() });
 * ```
 */
export class MemoryLimitStore implements LimitStore {
  readonly #open = new Map<string, number>();
  readonly #events = new Map<string, number[]>();
  readonly #now: () => number;
  #hits = 0;

  /** @param now the clock, for tests */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  acquire(key: string): number {
    const n = (this.#open.get(key) ?? 0) + 1;
    this.#open.set(key, n);
    return n;
  }

  release(key: string): void {
    const n = (this.#open.get(key) ?? 0) - 1;
    if (n <= 0) this.#open.delete(key);
    else this.#open.set(key, n);
  }

  hit(key: string, windowMs: number): number {
    const events = this.#recent(key, windowMs);
    // A flood counts up to a bound, not without end: far past any limit worth setting.
    if (events.length < MAX_EVENTS) events.push(this.#now());
    this.#events.set(key, events);
    if (++this.#hits % SWEEP_EVERY === 0) this.#sweep(windowMs);
    return events.length;
  }

  /** Forgets the keys whose events all fell out of the window, so memory follows the active clients. */
  #sweep(windowMs: number): void {
    const since = this.#now() - windowMs;
    for (const [key, events] of this.#events) if ((events[events.length - 1] ?? 0) <= since) this.#events.delete(key);
  }

  count(key: string, windowMs: number): number {
    const events = this.#recent(key, windowMs);
    if (events.length === 0) this.#events.delete(key);
    return events.length;
  }

  /** The key's events still inside the window; a bounded list, as old ones are dropped. */
  #recent(key: string, windowMs: number): number[] {
    const since = this.#now() - windowMs;
    const events = this.#events.get(key) ?? [];
    let first = 0;
    while (first < events.length && (events[first] ?? 0) <= since) first++;
    return first === 0 ? events : events.slice(first);
  }
}
