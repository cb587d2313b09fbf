/**
 * What an application keeps for its handlers between transactions: a relay's pooled transport,
 * an outbound queue, a parsed network list. Made on first use, one per application, and closed
 * when the last server serving the application closes, so nothing lives in module-level maps and
 * no handler needs a close function of its own.
 */

/**
 * The name of one kind of service, typed by what it holds.
 *
 * @example
 * ```ts
 * const COUNTER: ServiceKey<{ n: number }> = serviceKey('counter');
 * ```
 */
export interface ServiceKey<T extends object> {
  /** The name, for errors and logs. */
  readonly name: string;
  /** Never set: carries the type of what the key holds. */
  readonly type?: T;
}

/**
 * A new key for {@link Services.get}; each call makes a distinct one.
 *
 * @example
 * ```ts
 * const POOL = serviceKey<Pool>('relay pool');
 * const pool = app.services.get(POOL, () => new Pool());
 * ```
 */
export function serviceKey<T extends object>(name: string): ServiceKey<T> {
  return Object.freeze({ name });
}

/** A service that holds something to let go of: its `close()` runs when the application stops serving. */
interface Closeable {
  close(): unknown;
}

function closeable(value: object): value is Closeable {
  return typeof (value as Partial<Closeable>).close === 'function';
}

/**
 * An application's services. Each server that starts serving the application holds them
 * ({@link hold}); when the last one closes ({@link release}) every service with a `close()` is
 * closed, and the next use makes a new one.
 *
 * @example
 * ```ts
 * const queue = app.services.get(QUEUE, () => new OutboundQueue(options));
 * ```
 */
export class Services {
  readonly #made = new Map<ServiceKey<object>, object>();
  #holders = 0;

  /** The application's service of `key`, made by `make` on first use. */
  get<T extends object>(key: ServiceKey<T>, make: () => T): T {
    let value = this.#made.get(key) as T | undefined;
    if (value === undefined) {
      value = make();
      this.#made.set(key, value);
    }
    return value;
  }

  /** The service of `key` if it was made, without making it. */
  peek<T extends object>(key: ServiceKey<T>): T | undefined {
    return this.#made.get(key) as T | undefined;
  }

  /** How many servers serve the application now. */
  get holders(): number {
    return this.#holders;
  }

  /** A server starts serving the application. */
  hold(): void {
    this.#holders++;
  }

  /**
   * A server stopped serving the application; the last one closes every service (all of them,
   * even when one's `close()` fails: the first failure is thrown once all were tried).
   */
  async release(): Promise<void> {
    if (this.#holders === 0) throw new Error('Services.release(): no server holds these services');
    if (--this.#holders > 0) return;
    await this.close();
  }

  /**
   * For a readiness check: the first reason a service gives for not being ready (a service says
   * so with a `notReady()` method), or `undefined` when all are.
   */
  async notReady(): Promise<string | undefined> {
    for (const service of this.#made.values()) {
      const check = (service as { notReady?: unknown }).notReady;
      if (typeof check !== 'function') continue;
      const why: unknown = await (check as () => unknown).call(service);
      if (typeof why === 'string') return why;
    }
    return undefined;
  }

  /** Closes every service now and forgets them, whoever holds them. */
  async close(): Promise<void> {
    const made = [...this.#made.values()];
    this.#made.clear();
    const results = await Promise.allSettled(made.filter(closeable).map((service) => Promise.resolve().then(() => service.close())));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}
