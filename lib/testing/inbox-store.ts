/**
 * A test suite's inbox as a POP3 store: a user's maildrop is the mail for that address, so a test
 * can send with smtplib and read back with poplib, as a course on Python's mail modules does.
 */
import { Readable } from 'node:stream';
import type { Pop3Maildrop, Pop3Store } from '../pop3/maildir-store.js';
import type { Inbox } from './inbox.js';

/**
 * Serves an {@link Inbox} over POP3: the user is an address, its maildrop the messages for it.
 * QUIT's deletions remove them from the inbox.
 *
 * @example
 * ```ts
 * const controller = new Controller(RequestHandler, { inbox: true });
 * const pop3 = new Pop3Server({ store: new InboxStore(controller.inbox), authenticate: () => true, allowInsecureAuth: true });
 * ```
 */
export class InboxStore implements Pop3Store {
  readonly #inbox: Inbox;

  constructor(inbox: Inbox) {
    this.#inbox = inbox;
  }

  open(user: string): Promise<Pop3Maildrop> {
    const messages = this.#inbox.for(user).messages;
    const byId = new Map(messages.map((m) => [m.id, m.raw]));
    return Promise.resolve({
      messages: messages.map((m) => ({ uid: m.id, size: m.raw.length })),
      read: (uid: string) => {
        const raw = byId.get(uid);
        return raw === undefined ? Promise.reject(new Error(`no message ${uid} in the inbox`)) : Promise.resolve(Readable.from([raw]));
      },
      remove: (uids: readonly string[]) => {
        this.#inbox.remove(uids);
        return Promise.resolve();
      },
    });
  }
}
