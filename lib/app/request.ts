import { randomFillSync } from 'node:crypto';
import type { ParsedMail } from 'mailparser';
import { Readable } from 'node:stream';
import { MessageStream } from './message-stream.js';
import type { BodyType, EsmtpParams } from '../protocol/command.js';
import type { MailDsn, RcptDsn } from '../protocol/dsn.js';
import type { SessionInfo } from '../protocol/session-info.js';
import type { MessageAuthentication } from '../auth/verify.js';

/**
 * One mail transaction's envelope (RFC 5321 §2.3.1).
 *
 * @example
 * ```ts
 * const { mailFrom, rcptTos, mailParams } = this.request.envelope;
 * if (mailFrom === '') console.log('a bounce for', rcptTos, mailParams.SIZE);
 * ```
 */
export interface Envelope {
  /** The reverse-path; `''` for the null sender `<>` (bounces). */
  readonly mailFrom: string;
  /** MAIL FROM's ESMTP parameters, keywords upper-cased. */
  readonly mailParams: EsmtpParams;
  /** The recipients accepted so far, in order. */
  readonly rcptTos: readonly string[];
  /** Each recipient's ESMTP parameters, in the order of `rcptTos`. */
  readonly rcptParams: readonly EsmtpParams[];
  /** Whether MAIL carried SMTPUTF8 (RFC 6531). */
  readonly smtputf8: boolean;
  /** The BODY= the client declared (RFC 6152). */
  readonly bodyType: BodyType;
  /** The SIZE= the client declared (RFC 1870), if any. */
  readonly declaredSize: number | undefined;
  /** Whether MAIL carried REQUIRETLS (RFC 8689): pass the message on over verified TLS only. */
  readonly requireTls: boolean;
  /** MAIL's RET and ENVID (RFC 3461), when DSN is offered and the client gave them. */
  readonly dsn: MailDsn | undefined;
  /** Each recipient's NOTIFY and ORCPT (RFC 3461), in the order of `rcptTos`. */
  readonly rcptDsn: readonly (RcptDsn | undefined)[];
}

/** Where `recipient` (an index, or an address) is in `rcptTos`; a RangeError naming it when nowhere. */
export function recipientIndexes(rcptTos: readonly string[], recipient: number | string): number[] {
  if (typeof recipient === 'number') {
    if (!Number.isInteger(recipient) || recipient < 0 || recipient >= rcptTos.length) {
      throw new RangeError(`failRecipient(): no recipient at index ${recipient} (there are ${rcptTos.length})`);
    }
    return [recipient];
  }
  const indexes: number[] = [];
  rcptTos.forEach((address, i) => {
    if (address === recipient) indexes.push(i);
  });
  if (indexes.length === 0) throw new RangeError(`failRecipient(): ${recipient} is not a recipient of this message`);
  return indexes;
}

/**
 * The raw header fields of a message, parsed on first use. Names are matched case-insensitively.
 *
 * @example
 * ```ts
 * const subject = this.request.headers.get('Subject');
 * for (const [name, value] of this.request.headers) console.log(name, value);
 * ```
 */
export class MessageHeaders implements Iterable<[name: string, value: string]> {
  readonly #fields: [string, string][];

  constructor(body: Buffer) {
    this.#fields = parseHeaderBlock(body);
  }

  /** The first value of a field, unfolded, or `undefined`. */
  get(name: string): string | undefined {
    const lower = name.toLowerCase();
    return this.#fields.find(([n]) => n.toLowerCase() === lower)?.[1];
  }

  /** Every value of a field, in message order. */
  getAll(name: string): string[] {
    const lower = name.toLowerCase();
    return this.#fields.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
  }

  /** Every field as `[name, value]`, in message order. */
  [Symbol.iterator](): Iterator<[string, string]> {
    return this.#fields[Symbol.iterator]();
  }
}

// RFC 5322 §2.2: the header section ends at the first empty line; a line starting with white space
// continues the field before it (§2.2.3 unfolding).
function parseHeaderBlock(body: Buffer): [string, string][] {
  const end = body.indexOf('\r\n\r\n');
  const block = body.subarray(0, end === -1 ? body.length : end).toString('utf8');
  const fields: [string, string][] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === '') break;
    const last = fields[fields.length - 1];
    if ((line.startsWith(' ') || line.startsWith('\t')) && last !== undefined) {
      last[1] += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return fields;
}

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ALPHABET_CODES = Buffer.from(ALPHABET, 'latin1');
const ID_LENGTH = 12;
// Random bytes are drawn in blocks: one system call per 512 ids instead of one per message. The
// block is decoded into one string at once; each id is a slice of it, short enough that V8 copies
// it into a string of its own (no view that keeps the block alive) in a few dozen instructions,
// where decoding each id out of the Buffer was a call into Node's C++.
const pool = Buffer.alloc(ID_LENGTH * 512);
let ids = '';
let poolOffset = pool.length;

/** The body before `data()`: one shared empty buffer. */
const NO_BODY = Buffer.alloc(0);

/** A new queue id: 12 characters of Crockford base 32 (60 random bits). */
export function newQueueId(): string {
  if (poolOffset + ID_LENGTH > pool.length) {
    // Each random byte becomes one letter of the alphabet in place; ids are then plain slices.
    randomFillSync(pool);
    for (let i = 0; i < pool.length; i++) pool[i] = ALPHABET_CODES[(pool[i] ?? 0) & 31] ?? 0;
    ids = pool.toString('latin1');
    poolOffset = 0;
  }
  const id = ids.slice(poolOffset, poolOffset + ID_LENGTH);
  poolOffset += ID_LENGTH;
  return id;
}

/**
 * What a {@link RequestHandler} sees: the session, the envelope and, in `data()`, the body.
 *
 * @example
 * ```ts
 * override async data() {
 *   const { mailFrom, rcptTos, body } = this.request;
 *   console.log(mailFrom, rcptTos, this.request.headers.get('subject'), body.length);
 * }
 * ```
 */
export class SMTPRequest {
  /** The queue id, sent back in the 250 reply and logged. */
  readonly id: string = newQueueId();
  /** When the transaction began (MAIL), in milliseconds: the Date is made when first asked for. */
  readonly #began: number = Date.now();
  #receivedAt: Date | undefined;
  /** The connection's facts, as they stood at MAIL. */
  readonly session: SessionInfo;
  /** The envelope: sender, recipients, their parameters. */
  readonly envelope: Envelope;
  #body: Buffer = NO_BODY;
  #stream: Readable | null = null;
  #streaming = false;
  #headers: MessageHeaders | undefined;
  #authentication: MessageAuthentication | undefined;
  #authenticating: Promise<MessageAuthentication> | undefined;

  /** @internal */
  constructor(session: SessionInfo, envelope: Envelope) {
    this.session = session;
    this.envelope = envelope;
  }

  /** When the transaction began (MAIL). */
  get receivedAt(): Date {
    return (this.#receivedAt ??= new Date(this.#began));
  }

  /** The reverse-path; `''` for the null sender. */
  get mailFrom(): string {
    return this.envelope.mailFrom;
  }

  /** The accepted recipients. */
  get rcptTos(): readonly string[] {
    return this.envelope.rcptTos;
  }

  /**
   * The message as received, dot-stuffing removed (lines end in CRLF unless it came by BDAT as
   * BINARYMIME). Empty before `data()`. A streaming handler has no body: it throws there.
   */
  get body(): Buffer {
    if (this.#streaming) {
      throw new Error('this handler streams (static streaming = true): the body is not held; read this.request.stream');
    }
    return this.#body;
  }

  /**
   * The message as a Readable: while it arrives for a streaming handler (see
   * `RequestHandler.streaming`), or over the held body for a buffered one.
   */
  get stream(): Readable {
    this.#stream ??= Readable.from([this.#body], { objectMode: false });
    return this.#stream;
  }

  /**
   * The message as chunks lent to the reader, an alternative to {@link stream} for a streaming
   * handler that keeps nothing of a chunk once it has used it (a counter, a hash, a file written
   * chunk by chunk). **Each chunk is valid until the loop asks for the next one**: the server may
   * then read the client's next bytes into the same memory, so copy what you keep. In exchange a
   * message of any size costs no memory per read, where a stream's chunks are each new memory,
   * freed at the next garbage collection. Same pace, size limit and errors as the stream; call
   * it once, before reading the stream. For a buffered handler it yields the held body.
   */
  lentChunks(): AsyncIterableIterator<Buffer> {
    const stream = this.#stream;
    if (stream instanceof MessageStream) return stream.lend();
    return wholeBody(this.#body);
  }

  /** @internal */
  setBody(body: Buffer): void {
    this.#body = body;
    this.#stream = null;
    this.#headers = undefined;
  }

  /** @internal */
  setStream(stream: Readable): void {
    this.#stream = stream;
    this.#streaming = true;
  }

  /**
   * What mail authentication found (the `mailAuth` setting): SPF, each DKIM signature, DMARC, ARC
   * and the `Authentication-Results` field. A buffered handler has it in `data()`; a streaming
   * one once the message has ended (await {@link authenticated} after reading the stream).
   * `undefined` when `mailAuth` is off.
   */
  get authentication(): MessageAuthentication | undefined {
    return this.#authentication;
  }

  /**
   * Resolves with {@link authentication} once it is known (for a streaming handler: after the
   * last byte; read the stream first). Rejects with the `550 5.7.1` SMTPError when `dmarcEnforce`
   * refuses the message, so a handler that awaits it before it commits stores nothing refused.
   */
  authenticated(): Promise<MessageAuthentication | undefined> {
    return this.#authenticating ?? Promise.resolve(this.#authentication);
  }

  /** @internal A streaming message's verification under way (it rejects with a refusal). */
  setAuthenticating(pending: Promise<MessageAuthentication>): void {
    this.#authenticating = pending;
    // Awaited by the transaction; a handler need not ask.
    pending.catch(() => undefined);
  }

  /** @internal The verification's result. */
  keepAuthentication(result: MessageAuthentication): void {
    this.#authentication = result;
  }

  /** The message's header fields, parsed the first time they are asked for. */
  get headers(): MessageHeaders {
    this.#headers ??= new MessageHeaders(this.#body);
    return this.#headers;
  }

  /**
   * Parses the whole message (MIME parts, attachments, decoded headers) with mailparser, loaded on
   * first use so that servers which never parse do not carry it.
   */
  async parse(): Promise<ParsedMail> {
    const { simpleParser } = await import('mailparser');
    return simpleParser(this.#body);
  }
}

/** A held body as lent chunks: itself, once. */
// eslint-disable-next-line @typescript-eslint/require-await
async function* wholeBody(body: Buffer): AsyncGenerator<Buffer> {
  if (body.length > 0) yield body;
}
