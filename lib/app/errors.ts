/**
 * The one error policy: how a value thrown by user code (a handler hook, `authenticate`, a
 * connection hook) becomes the reply the client gets. An {@link SMTPError} is its own reply and
 * is logged with its `logMessage`; anything else is logged as a failure and answered with the
 * caller's temporary reply, so a bug never leaks its text to the client or leaves it unanswered.
 */
import type { Logger } from 'pino';
import { REPLIES } from '../protocol/replies.js';
import { SMTPError, type Reply } from '../protocol/reply.js';
import type { Maybe } from './maybe.js';

/**
 * Thrown by a hook (a handler's, `onConnect`, `onHelo`) to drop the connection at once, without
 * a reply, as a failing network would: for testing how clients cope (see the Controller's faults).
 *
 * @example
 * ```ts
 * class Flaky extends RequestHandler {
 *   override rcpt() { if (Math.random() < 0.1) throw new DropConnection(); }
 * }
 * ```
 */
export class DropConnection extends Error {
  constructor(message = 'connection dropped on purpose') {
    super(message);
    this.name = 'DropConnection';
  }
}

/** The reply for `err`; `fallback` (a 4xx from the catalogue) when it is not an `SMTPError`. */
export function replyForError(err: unknown, fallback: Reply, log: Logger, where: string): Reply {
  if (err instanceof DropConnection) {
    log.info({ hook: where }, err.message);
    return REPLIES.dropped();
  }
  if (err instanceof SMTPError) {
    log.info({ hook: where, code: err.code }, err.logMessage);
    return err.toReply();
  }
  log.error({ hook: where, err }, 'hook failed');
  return fallback;
}

/**
 * Asks a connection hook (`onConnect`, `onHelo`) for its verdict: `undefined` to go on, else the
 * refusal to send. `false` means `refused`; a thrown value goes through {@link replyForError}.
 */
export function hookVerdict(
  hook: () => void | boolean | Promise<void | boolean>,
  refused: Reply,
  fallback: Reply,
  log: Logger,
  where: string,
): Maybe<Reply | undefined> {
  const judge = (result: void | boolean): Reply | undefined => (result === false ? refused : undefined);
  const failed = (err: unknown): Reply => replyForError(err, fallback, log, where);
  try {
    const result = hook();
    return result instanceof Promise ? result.then(judge, failed) : judge(result);
  } catch (err) {
    return failed(err);
  }
}
