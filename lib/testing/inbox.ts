/**
 * What a test suite's catcher keeps: every accepted message with its envelope, the session it
 * came in and a parsed view, in arrival order, within a cap; queries over them; and `waitFor`,
 * which resolves with the first match already there or still to come, and otherwise fails saying
 * what did arrive.
 */
import { EventEmitter } from 'node:events';
import type { CaughtMessage } from './caught.js';
import { ANY, describeQuery, matchesQuery, tagged, type InboxQuery } from './inbox-query.js';

/**
 * What an inbox keeps at most: past either, the oldest messages are dropped (counted in
 * {@link Inbox.dropped}).
 *
 * @example
 * ```ts
 * const inbox = new Inbox({ maxMessages: 100, maxBytes: 10 * 1024 * 1024 } satisfies InboxOptions);
 * ```
 */
export interface InboxOptions {
  /** Messages kept. Default 1000. */
  readonly maxMessages?: number;
  /** Bytes of raw messages kept. Default 64 MiB. A bigger message than this is refused `552`. */
  readonly maxBytes?: number;
}

/**
 * `waitFor` found nothing in time; its message names the query and what did arrive.
 *
 * @example
 * ```ts
 * await expect(inbox.waitFor({ to: 'x@example.com' }, { timeout: 100 })).rejects.toBeInstanceOf(InboxTimeoutError);
 * ```
 */
export class InboxTimeoutError extends Error {
  /** What had arrived (in the view waited on) when time ran out. */
  readonly arrived: readonly CaughtMessage[];

  constructor(query: InboxQuery, ms: number, arrived: readonly CaughtMessage[]) {
    const list = arrived.map((m) => `  <${m.mailFrom}> -> ${m.rcptTos.map((r) => `<${r}>`).join(', ')} "${m.subject}"`);
    super(
      `waitFor: no message${query === ANY ? '' : ` matching ${describeQuery(query)}`} within ${ms} ms; ` +
        (arrived.length === 0 ? 'none arrived' : `${arrived.length} arrived:\n${list.join('\n')}`),
    );
    this.name = 'InboxTimeoutError';
    this.arrived = arrived;
  }
}

/** The store behind an inbox and its views. */
class Store extends EventEmitter<{ message: [CaughtMessage]; removed: [readonly string[]] }> {
  readonly messages: CaughtMessage[] = [];
  bytes = 0;
  dropped = 0;
  readonly maxMessages: number;
  readonly maxBytes: number;

  constructor(options: InboxOptions) {
    super();
    this.maxMessages = options.maxMessages ?? 1000;
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.setMaxListeners(0);
  }

  add(message: CaughtMessage): void {
    this.messages.push(message);
    this.bytes += message.raw.length;
    const dropped: string[] = [];
    while (this.messages.length > this.maxMessages || this.bytes > this.maxBytes) {
      const old = this.messages.shift();
      if (old === undefined) break;
      this.bytes -= old.raw.length;
      this.dropped++;
      dropped.push(old.id);
    }
    if (dropped.length > 0) this.emit('removed', dropped);
    this.emit('message', message);
  }

  remove(keep: (m: CaughtMessage) => boolean): void {
    const kept = this.messages.filter(keep);
    const stays = new Set(kept);
    const removed = this.messages.filter((m) => !stays.has(m)).map((m) => m.id);
    this.messages.length = 0;
    this.messages.push(...kept);
    this.bytes = kept.reduce((sum, m) => sum + m.raw.length, 0);
    if (removed.length > 0) this.emit('removed', removed);
  }
}

/**
 * The messages of an inbox that match a filter: one recipient's, one tag's, or all of them.
 * Tests that run in parallel each take their own view and never see each other's mail.
 *
 * @example
 * ```ts
 * const mine = controller.inbox.for('signup-test@example.com');
 * await sendSignupMail('signup-test@example.com');
 * const message = await mine.waitFor({ subject: /confirm/i });
 * ```
 */
export class InboxView implements AsyncIterable<CaughtMessage> {
  readonly #store: Store;
  readonly #filter: (m: CaughtMessage) => boolean;

  /** @internal */
  constructor(store: Store, filter: (m: CaughtMessage) => boolean) {
    this.#store = store;
    this.#filter = filter;
  }

  /** The messages in arrival order (a copy). */
  get messages(): CaughtMessage[] {
    return this.#store.messages.filter(this.#filter);
  }

  /** The messages matching `query`, in arrival order. */
  find(query: InboxQuery): CaughtMessage[] {
    return this.messages.filter((m) => matchesQuery(m, query));
  }

  /** Forgets this view's messages (the rest of the inbox stays). */
  clear(): void {
    this.#store.remove((m) => !this.#filter(m));
  }

  /** The messages for one envelope recipient (compared ignoring case). */
  for(recipient: string): InboxView {
    const want = recipient.toLowerCase();
    return new InboxView(this.#store, (m) => this.#filter(m) && m.rcptTos.some((r) => r.toLowerCase() === want));
  }

  /** The messages with a tag: an `X-Tag: tag` header, or `+tag` in a recipient's address. */
  tagged(tag: string): InboxView {
    return new InboxView(this.#store, (m) => this.#filter(m) && tagged(m, tag));
  }

  /** Calls `listener` for each message of this view that arrives from now on; returns how to stop. */
  onMessage(listener: (message: CaughtMessage) => void): () => void {
    const own = (m: CaughtMessage): void => {
      if (this.#filter(m)) listener(m);
    };
    this.#store.on('message', own);
    return () => this.#store.off('message', own);
  }

  /**
   * The first message matching `query`, already here or arriving within `timeout` ms (default
   * 5000); else rejects with an {@link InboxTimeoutError} listing what arrived.
   */
  waitFor(query: InboxQuery = ANY, options: { readonly timeout?: number } = {}): Promise<CaughtMessage> {
    const found = this.find(query)[0];
    if (found !== undefined) return Promise.resolve(found);
    const ms = options.timeout ?? 5000;
    return new Promise((resolve, reject) => {
      const stop = this.onMessage((m) => {
        if (!matchesQuery(m, query)) return;
        clearTimeout(timer);
        stop();
        resolve(m);
      });
      const timer = setTimeout(() => {
        stop();
        reject(new InboxTimeoutError(query, ms, this.messages));
      }, ms);
    });
  }

  /**
   * Calls `listener` with the ids of messages that leave the inbox from now on (deleted, cleared,
   * or dropped for the cap); returns how to stop.
   */
  onRemoved(listener: (ids: readonly string[]) => void): () => void {
    this.#store.on('removed', listener);
    return () => this.#store.off('removed', listener);
  }

  /** Each message of this view that arrives from now on, for `for await`. */
  async *[Symbol.asyncIterator](): AsyncIterator<CaughtMessage> {
    const waiting: CaughtMessage[] = [];
    let wake: (() => void) | undefined;
    const stop = this.onMessage((m) => {
      waiting.push(m);
      wake?.();
    });
    try {
      for (;;) {
        const next = waiting.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      stop();
    }
  }
}

/**
 * A test suite's inbox: every message the {@link Controller} accepted (with its `inbox` option),
 * in arrival order.
 *
 * @example
 * ```ts
 * const controller = new Controller(Catcher, { inbox: true });
 * await controller.start();
 * await sendMail({ to: 'bob@example.com', subject: 'Welcome' });
 * const message = await controller.inbox.waitFor({ to: 'bob@example.com', subject: 'Welcome' });
 * ```
 */
export class Inbox extends InboxView {
  readonly #store: Store;

  constructor(options: InboxOptions = {}) {
    for (const key of ['maxMessages', 'maxBytes'] as const) {
      const value = options[key];
      if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
        throw new RangeError(`Inbox: ${key} must be a positive whole number, got ${String(value)}`);
      }
    }
    const store = new Store(options);
    super(store, () => true);
    this.#store = store;
  }

  /** How many old messages were dropped to stay within the cap. */
  get dropped(): number {
    return this.#store.dropped;
  }

  /** The largest message kept, in bytes (`maxBytes`). */
  get maxBytes(): number {
    return this.#store.maxBytes;
  }

  /** Forgets the messages with these ids (what a POP3 client deleted). */
  remove(ids: readonly string[]): void {
    const gone = new Set(ids);
    this.#store.remove((m) => !gone.has(m.id));
  }

  /** @internal Keeps a message (the catching handler calls it). */
  keep(message: CaughtMessage): void {
    this.#store.add(message);
  }
}
