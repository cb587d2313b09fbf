/**
 * A queued message's state as the spool stores it (one JSON file per message), and the check that
 * a state file read back is one: a file that is not is quarantined, never delivered.
 */
import type { RcptDsn } from '../protocol/dsn.js';

/** A queue id: time-ordered, safe in a file name. */
export const ID = /^[a-z0-9]{8,40}$/;

/**
 * One recipient of a queued message and how it stands.
 *
 * @example
 * ```ts
 * const waiting = entry.recipients.filter((r: QueuedRecipient) => r.state === 'pending').map((r) => `${r.address}: ${r.reply ?? 'not tried'}`);
 * ```
 */
export interface QueuedRecipient {
  /** The address as the client gave it at RCPT. */
  readonly address: string;
  /** Its DSN parameters (NOTIFY, ORCPT; RFC 3461), when it had them. */
  readonly dsn?: RcptDsn | undefined;
  /** `pending`: still to deliver; `sent`: an exchanger took it; `failed`: given up (bounced). */
  state: 'pending' | 'sent' | 'failed';
  /** The last reply's code. */
  code?: number;
  /** The last reply's enhanced status code (RFC 3463). */
  status?: string;
  /** The last reply, or what happened instead ("connection refused"). */
  reply?: string;
  /** The exchanger that gave the last reply. */
  exchanger?: string;
}

/**
 * The state of one queued message, as stored.
 *
 * @example
 * ```ts
 * const late = (await deliveryQueue(app).list()).filter(({ entry }: { entry: QueueEntry }) => entry.attempts > 3);
 * ```
 */
export interface QueueEntry {
  /** The queue id, as in the 250 reply and the log. */
  readonly id: string;
  /** The envelope sender; `''` for a bounce (which itself never bounces). */
  readonly from: string;
  /** Every recipient, each with how it stands. */
  readonly recipients: QueuedRecipient[];
  /** RET (RFC 3461): what a bounce returns. */
  readonly ret?: 'FULL' | 'HDRS' | undefined;
  /** ENVID (RFC 3461): the sender's id, named in notifications. */
  readonly envid?: string | undefined;
  /** REQUIRETLS (RFC 8689). */
  readonly requireTls: boolean;
  /** Whether the content has 8-bit bytes. */
  readonly eightBit: boolean;
  /** Size of the content in bytes. */
  readonly size: number;
  /** When it was queued, ms since the epoch. */
  readonly queuedAt: number;
  /** Attempts made so far. */
  attempts: number;
  /** When it is tried next, ms since the epoch. */
  nextAttemptAt: number;
  /** Whether the sender was told it is delayed. */
  delayNoticeSent?: boolean;
  /** The sender was never verified (an outside client's mail): it is sent no notice. */
  readonly unverifiedSender?: boolean;
  /** A TLS report (RFC 8460 §3): sent despite TLS failures, and not counted in the next report. */
  readonly tlsReport?: boolean;
  /** The DKIM-Signature fields made when it was queued, sent on top of its content. */
  readonly dkim?: string;
  /** Header fields known once its content was read (an Authentication-Results field), sent on top of all. */
  readonly head?: string;
}

/**
 * A queued message as an operator sees it.
 *
 * @example
 * ```ts
 * const sending = (await deliveryQueue(app).list()).filter((m: ListedMessage) => m.active).length;
 * ```
 */
export interface ListedMessage {
  /** Its state. */
  readonly entry: QueueEntry;
  /** Whether a process is delivering it now. */
  readonly active: boolean;
}

/**
 * A state file that could not be read as a queue entry, and why.
 *
 * @example
 * ```ts
 * for (const bad of await new Spool(dir).unreadable()) console.error(`${bad.file}: ${bad.reason}`);
 * ```
 */
export interface UnreadableEntry {
  /** Where it is, relative to the queue folder (`queue/…`, `active/…` or `quarantine/…`). */
  readonly file: string;
  /** Why it cannot be read (`not JSON: …`, `the file is empty`, `recipients is not a list` …). */
  readonly reason: string;
}

const STATES = new Set(['pending', 'sent', 'failed']);

/** The queue entry in a state file's text, or why it is not one. */
export function parseEntry(text: string): QueueEntry | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return text.trim() === '' ? 'the file is empty' : `not JSON: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const e = value as Record<string, unknown>;
  if (typeof e.id !== 'string' || !ID.test(e.id)) return 'id is missing or not a queue id';
  if (typeof e.from !== 'string') return 'from is not a string';
  if (!Array.isArray(e.recipients)) return 'recipients is not a list';
  for (const r of e.recipients as unknown[]) {
    const rec = r as Record<string, unknown> | null;
    if (typeof rec !== 'object' || rec === null || typeof rec.address !== 'string' || !STATES.has(rec.state as string)) {
      return 'a recipient is not an address with a state';
    }
  }
  if (e.head !== undefined && (typeof e.head !== 'string' || !/^[\x21-\x39\x3b-\x7e]+:[^]*\r\n$/.test(e.head)))
    return 'head is not header fields';
  if (e.dkim !== undefined && (typeof e.dkim !== 'string' || !/^DKIM-Signature:[^]*\r\n$/i.test(e.dkim)))
    return 'dkim is not a DKIM-Signature field';
  for (const field of ['queuedAt', 'attempts', 'nextAttemptAt', 'size'] as const) {
    if (typeof e[field] !== 'number' || !Number.isFinite(e[field])) return `${field} is not a number`;
  }
  return value as QueueEntry;
}

/** Why a quarantined file was set apart. */
export function reasonOf(text: string): string {
  const why = parseEntry(text);
  return typeof why === 'string' ? why : 'quarantined';
}

/**
 * What {@link OutboundQueue.enqueue} takes: the envelope of a new message.
 *
 * @example
 * ```ts
 * const message: NewMessage = { from: 'me@example.com', recipients: [{ address: 'you@example.org' }], ret: 'HDRS' };
 * ```
 */
export interface NewMessage {
  /** The envelope sender; `''` (the null sender) for a notification, which never bounces. */
  readonly from: string;
  /** The recipients, each with its DSN parameters (RFC 3461) when it has them. */
  readonly recipients: readonly Pick<QueuedRecipient, 'address' | 'dsn'>[];
  /** RET: what a bounce returns, the whole message or its header section (the default). */
  readonly ret?: 'FULL' | 'HDRS' | undefined;
  /** ENVID: the sender's id for the transaction, named in notifications. */
  readonly envid?: string | undefined;
  /** REQUIRETLS (RFC 8689): only over verified TLS to exchangers that offer it. */
  readonly requireTls?: boolean | undefined;
  /** Whether the content has 8-bit bytes. */
  readonly eightBit?: boolean | undefined;
  /**
   * The sender was never verified (an outside client's mail): no notice (bounce, delay,
   * relayed) is ever sent to it, as a forged sender would get it (backscatter).
   */
  readonly unverifiedSender?: boolean | undefined;
  /**
   * A TLS report (RFC 8460 §3): delivered despite any TLS failure (no MTA-STS policy narrows its
   * exchangers or asks for verified TLS; ignored with `requireTls`), and its sessions are not
   * counted in the next report.
   */
  readonly tlsReport?: boolean | undefined;
  /**
   * Header fields known only once the content has been read (mail authentication's verdict):
   * awaited before the message is committed (a rejection refuses it), kept in its entry, and sent
   * on top of its content.
   */
  readonly head?: (() => Promise<string>) | undefined;
}
