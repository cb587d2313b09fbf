/**
 * Where a POP3 server finds a user's mail: the {@link Pop3Store} interface, and the store over the
 * Maildir that the `Maildir` handler writes (one for everyone, or one per recipient).
 */
import { createHash } from 'node:crypto';
import { open, readdir, stat, unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { mailboxFolder } from '../storage/folder-names.js';
import type { Pop3Message } from './session.js';

/**
 * A user's maildrop for one POP3 session: its messages when the session began, their content,
 * and the deletions made at QUIT.
 *
 * @example
 * ```ts
 * const drop: Pop3Maildrop = await store.open('alice@example.com');
 * for await (const part of await drop.read(drop.messages[0]!.uid)) process.stdout.write(part);
 * ```
 */
export interface Pop3Maildrop {
  /** The messages, in order: message number n is `messages[n - 1]`. */
  readonly messages: readonly Pop3Message[];
  /**
   * A message's content by its unique id, as a stream (a large message is never held whole).
   * Rejects when it cannot be read (removed meanwhile): the client then gets `-ERR`.
   */
  read(uid: string): Promise<Readable>;
  /** Removes these messages (QUIT, in the UPDATE state). */
  remove(uids: readonly string[]): Promise<void>;
}

/**
 * Where a POP3 server finds mail: one maildrop per user, named by the user the `authenticate`
 * setting accepted (its returned name when it returns one).
 *
 * @example
 * ```ts
 * const store: Pop3Store = new MaildirStore('/var/mail/in', { perUser: true });
 * ```
 */
export interface Pop3Store {
  /** The user's maildrop as it stands now. */
  open(user: string): Promise<Pop3Maildrop>;
  /**
   * Which maildrop `user` opens: one session at a time holds it (RFC 1939 §8), whatever name
   * reached it. Default: the user name in lower case.
   */
  maildropOf?(user: string): string;
}

/**
 * Options of {@link MaildirStore}.
 *
 * @example
 * ```ts
 * new MaildirStore('/var/mail/in', { perUser: true } satisfies MaildirStoreOptions);
 * ```
 */
export interface MaildirStoreOptions {
  /**
   * Each user's Maildir is `<root>/<user>/` (the layout of the `Maildir` handler's
   * `maildirPerRecipient`, the user being the address); otherwise every user sees `<root>`.
   * Default false.
   */
  readonly perUser?: boolean;
}

/**
 * The messages of a Maildir (`new/` and `cur/`, oldest first) as POP3 maildrops. The unique id is
 * a digest of the file's base name, so it stays the same when a mail reader renames the file
 * with flags. QUIT's deletions remove the files.
 *
 * @example
 * ```ts
 * new Pop3Server({ store: new MaildirStore('./mail', { perUser: true }), authenticate, hostname: 'pop.example.com' });
 * ```
 */
export class MaildirStore implements Pop3Store {
  readonly #root: string;
  readonly #perUser: boolean;

  constructor(root: string, options: MaildirStoreOptions = {}) {
    this.#root = root;
    this.#perUser = options.perUser === true;
  }

  maildropOf(user: string): string {
    if (!this.#perUser) return this.#root;
    // A name with no possible folder has no mail: it opens an empty maildrop of its own.
    return join(this.#root, mailboxFolder(user) ?? `%too-long/${user.length}`);
  }

  async open(user: string): Promise<Pop3Maildrop> {
    const folder = this.maildropOf(user);
    const files: { path: string; uid: string; size: number; name: string }[] = [];
    for (const sub of ['new', 'cur']) {
      let names: string[];
      try {
        names = await readdir(join(folder, sub));
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT') continue;
        throw err;
      }
      for (const name of names) {
        if (name.startsWith('.')) continue;
        const path = join(folder, sub, name);
        const info = await stat(path).catch(() => undefined);
        if (info === undefined || !info.isFile()) continue;
        const base = name.split(':')[0] ?? name;
        files.push({ path, uid: createHash('sha1').update(base).digest('hex'), size: info.size, name: base });
      }
    }
    // Maildir names start with the delivery time in seconds: their order is arrival order.
    files.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
    const byUid = new Map(files.map((f) => [f.uid, f.path]));
    return {
      messages: files.map((f) => ({ uid: f.uid, size: f.size })),
      read: async (uid) => (await open(byUid.get(uid) ?? '', 'r')).createReadStream(),
      remove: async (uids) => {
        for (const uid of uids) {
          const path = byUid.get(uid);
          if (path === undefined) continue;
          try {
            await unlink(path);
          } catch (err) {
            // Gone already (a mail reader took it): what QUIT wanted.
            if ((err as { code?: string }).code !== 'ENOENT') throw err;
          }
        }
      },
    };
  }
}
