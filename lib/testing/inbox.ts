/**
 * What a test suite's catcher keeps: every accepted message with its envelope, the session it
 * came in and a parsed view, in arrival order, within a cap; queries over them; and `waitFor`,
 * which resolves with the first match already there or still to come, and otherwise fails saying
 * what did arrive.
 */
import { EventEmitter } from 'node:events';
import type { ParsedMail } from 'mailparser';

/**
 * One attachment of a caught message.
 *
 * @example
 * ```ts
 * const pdf: CaughtAttachment | undefined = message.attachments.find((a) => a.contentType === 'application/pdf');
 * ```
 */
export interface CaughtAttachment {
  /** Its file name, when it has one. */
  readonly filename: string | undefined;
  /** Its MIME type, `application/pdf` say. */
  readonly contentType: string;
  /** Its bytes, decoded. */
  readonly content: Buffer;
}

/**
 * A message the inbox caught.
 *
 * @example
 * ```ts
 * const message: CaughtMessage = await controller.inbox.waitFor({ to: 'bob@example.com' });
 * expect(message.subject).toBe('Welcome');
 * expect(message.attachments[0]?.filename).toBe('invoice.pdf');
 * ```
 */
export interface CaughtMessage {
  /** The queue id the client was told in the 250. */
  readonly id: string;
  /** The envelope sender (`''` for the null sender). */
  readonly mailFrom: string;
  /** The envelope recipients. */
  readonly rcptTos: readonly string[];
  /** When it arrived. */
  readonly receivedAt: Date;
  /** Where it came from. */
  readonly session: {
    /** The client's address. */
    readonly remoteAddress: string;
    /** Its HELO/EHLO name. */
    readonly heloName: string;
    /** Whether the session was over TLS. */
    readonly secure: boolean;
    /** The authenticated user, if any. */
    readonly user: string | undefined;
  };
  /** The message as received. */
  readonly raw: Buffer;
  /** The Subject, decoded; `''` without one. */
  readonly subject: string;
  /** The From header's addresses. */
  readonly from: readonly string[];
  /** The To header's addresses. */
  readonly to: readonly string[];
  /** The Cc header's addresses. */
  readonly cc: readonly string[];
  /** The plain-text body (or the HTML's text when there is none). */
  readonly text: string;
  /** The HTML body, when there is one. */
  readonly html: string | undefined;
  /** Its attachments, in order. */
  readonly attachments: readonly CaughtAttachment[];
  /** Each header field's value as it appears, unfolded, by lower-case name (the first one when repeated). */
  readonly headers: ReadonlyMap<string, string>;
}

/**
 * A string (contained; for addresses: equal, ignoring case) or a regular expression.
 *
 * @example
 * ```ts
 * const subject: Matcher = /^Your order \d+/;
 * ```
 */
export type Matcher = string | RegExp;

/**
 * Which messages: every field given must match. A function is a query of its own.
 *
 * @example
 * ```ts
 * const query: InboxQuery = { to: 'bob@example.com', subject: /welcome/i, header: { 'x-mailer': 'shop' } };
 * ```
 */
export type InboxQuery =
  | ((message: CaughtMessage) => boolean)
  | {
      /** An envelope recipient. */
      readonly to?: Matcher;
      /** The envelope sender. */
      readonly from?: Matcher;
      /** The Subject. */
      readonly subject?: Matcher;
      /** The text body. */
      readonly text?: Matcher;
      /** Header values by name (case-insensitive). */
      readonly header?: Readonly<Record<string, Matcher>>;
      /** A tag: the `X-Tag` header, or `+tag` in a recipient's address. */
      readonly tag?: string;
    };

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

/** The query of a `waitFor` without one. */
const ANY = (): boolean => true;

function describeQuery(query: InboxQuery): string {
  if (typeof query === 'function') return `the predicate ${query.name || '(anonymous)'}`;
  return JSON.stringify(query, (_key, value: unknown) => (value instanceof RegExp ? value.toString() : value));
}

function matches(matcher: Matcher, value: string): boolean {
  return typeof matcher === 'string' ? value.includes(matcher) : matcher.test(value);
}

function addressMatches(matcher: Matcher, address: string): boolean {
  return typeof matcher === 'string' ? address.toLowerCase() === matcher.toLowerCase() : matcher.test(address);
}

/** Whether `message` has the tag: its X-Tag header, or `+tag@` in a recipient. */
function tagged(message: CaughtMessage, tag: string): boolean {
  if (message.headers.get('x-tag') === tag) return true;
  const plus = `+${tag.toLowerCase()}@`;
  return message.rcptTos.some((r) => r.toLowerCase().includes(plus));
}

/** Whether `message` matches `query`. */
export function matchesQuery(message: CaughtMessage, query: InboxQuery): boolean {
  if (typeof query === 'function') return query(message);
  if (query.to !== undefined && !message.rcptTos.some((r) => addressMatches(query.to as Matcher, r))) return false;
  if (query.from !== undefined && !addressMatches(query.from, message.mailFrom)) return false;
  if (query.subject !== undefined && !matches(query.subject, message.subject)) return false;
  if (query.text !== undefined && !matches(query.text, message.text)) return false;
  for (const [name, matcher] of Object.entries(query.header ?? {})) {
    const value = message.headers.get(name.toLowerCase());
    if (value === undefined || !matches(matcher, value)) return false;
  }
  return query.tag === undefined || tagged(message, query.tag);
}

/** The store behind an inbox and its views. */
class Store extends EventEmitter<{ message: [CaughtMessage] }> {
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
    while (this.messages.length > this.maxMessages || this.bytes > this.maxBytes) {
      const old = this.messages.shift();
      if (old === undefined) break;
      this.bytes -= old.raw.length;
      this.dropped++;
    }
    this.emit('message', message);
  }

  remove(keep: (m: CaughtMessage) => boolean): void {
    const kept = this.messages.filter(keep);
    this.messages.length = 0;
    this.messages.push(...kept);
    this.bytes = kept.reduce((sum, m) => sum + m.raw.length, 0);
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

/** @internal The caught view of a parsed message. */
export function caughtMessage(
  parts: Pick<CaughtMessage, 'id' | 'mailFrom' | 'rcptTos' | 'receivedAt' | 'session' | 'raw'>,
  parsed: ParsedMail,
): CaughtMessage {
  const addresses = (field: ParsedMail['to']): string[] =>
    (field === undefined ? [] : Array.isArray(field) ? field : [field]).flatMap((a) => a.value.map((v) => v.address ?? ''));
  const headers = new Map<string, string>();
  for (const line of parsed.headerLines) {
    if (headers.has(line.key)) continue;
    const colon = line.line.indexOf(':');
    headers.set(
      line.key,
      line.line
        .slice(colon + 1)
        .replace(/\r?\n[ \t]+/g, ' ')
        .trim(),
    );
  }
  return {
    ...parts,
    subject: parsed.subject ?? '',
    from: addresses(parsed.from),
    to: addresses(parsed.to),
    cc: addresses(parsed.cc),
    text: parsed.text ?? '',
    html: parsed.html === false ? undefined : parsed.html,
    attachments: parsed.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content })),
    headers,
  };
}
