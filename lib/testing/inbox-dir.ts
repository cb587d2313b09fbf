/**
 * An inbox kept in a Maildir, so a catcher's mail outlives a restart and any Maildir reader (the
 * POP3 server's `MaildirStore`, mutt, a script) sees it: each message caught is written to `new/`,
 * each that leaves the inbox is unlinked, and at start what the folder holds is caught again.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ParsedMail } from 'mailparser';
import { makeFolder } from '../storage/folders.js';
import { maildirName, prepareMaildir } from '../storage/maildir-files.js';
import { caughtMessage, type CaughtMessage } from './caught.js';
import type { Inbox } from './inbox.js';

/** The envelope and session a Maildir file does not carry, kept beside it in `.sirocco/<name>.json`. */
interface Envelope {
  readonly id: string;
  readonly mailFrom: string;
  readonly rcptTos: readonly string[];
  readonly receivedAt: string;
  readonly session: CaughtMessage['session'];
}

const SIDECARS = '.sirocco';

/**
 * Keeps an {@link Inbox} in a Maildir (`tmp/`, `new/`, `cur/`; made when missing). The envelope
 * and session of each message sit beside it in `.sirocco/<name>.json` (a dot folder, which Maildir
 * readers pass over); a file another tool put in `new/` or `cur/` is caught too, its envelope read
 * from its `Return-Path` and `Delivered-To` (else `To` and `Cc`) headers. Writes are not flushed to
 * disk one by one: this is a catcher's memory, not a mail store.
 *
 * @example
 * ```ts
 * const controller = new Controller(RequestHandler, { inbox: true });
 * const kept = new InboxDirectory('/tmp/caught');
 * await kept.attach(controller.inbox); // what the folder held is in the inbox again
 * await controller.start();
 * ```
 */
export class InboxDirectory {
  /** The Maildir's path. */
  readonly path: string;
  readonly #onError: (err: Error) => void;
  readonly #names = new Map<string, string>();
  readonly #writes = new Map<string, Promise<void>>();
  #stops: (() => void)[] = [];

  /** `onError`: told of a file that could not be written, read or removed (default: a process warning). */
  constructor(path: string, onError: (err: Error) => void = (err) => process.emitWarning(err)) {
    this.path = path;
    this.#onError = onError;
  }

  /**
   * Catches again what the folder holds (oldest first, within the inbox's caps: what they drop is
   * unlinked), then keeps the folder in step with the inbox. Resolves to how many were read.
   * Throws, naming the path, when the folder cannot be made or written.
   */
  async attach(inbox: Inbox): Promise<number> {
    if (this.#stops.length > 0) throw new Error('InboxDirectory: already attached');
    prepareMaildir(this.path);
    makeFolder(join(this.path, SIDECARS));
    this.#stops.push(inbox.onRemoved((ids) => ids.forEach((id) => void this.#remove(id))));
    const found = await this.#read();
    found.sort((a, b) => a.receivedAt.getTime() - b.receivedAt.getTime());
    for (const message of found) inbox.keep(message);
    this.#stops.push(inbox.onMessage((message) => this.#write(message)));
    return found.length;
  }

  /** Stops following the inbox; resolves once every write begun has ended. */
  async detach(): Promise<void> {
    for (const stop of this.#stops.splice(0)) stop();
    await Promise.all(this.#writes.values());
  }

  #write(message: CaughtMessage): void {
    const name = maildirName(message.receivedAt.getTime());
    this.#names.set(message.id, name);
    const envelope: Envelope = {
      id: message.id,
      mailFrom: message.mailFrom,
      rcptTos: message.rcptTos,
      receivedAt: message.receivedAt.toISOString(),
      session: message.session,
    };
    const write = (async () => {
      await writeFile(join(this.path, SIDECARS, `${name}.json`), JSON.stringify(envelope));
      await writeFile(join(this.path, 'tmp', name), message.raw);
      await rename(join(this.path, 'tmp', name), join(this.path, 'new', name));
    })()
      .catch((err: unknown) => this.#onError(err instanceof Error ? err : new Error(String(err))))
      .finally(() => this.#writes.delete(message.id));
    this.#writes.set(message.id, write);
  }

  async #remove(id: string): Promise<void> {
    await this.#writes.get(id);
    const name = this.#names.get(id);
    if (name === undefined) return;
    this.#names.delete(id);
    // A reader may have moved it to cur/ and added flags (`name:2,S`).
    const inCur = (await readdir(join(this.path, 'cur')).catch(() => [])).filter((f) => f === name || f.startsWith(`${name}:`));
    const paths = [join(this.path, 'new', name), ...inCur.map((f) => join(this.path, 'cur', f)), join(this.path, SIDECARS, `${name}.json`)];
    for (const path of paths) {
      await unlink(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.#onError(err);
      });
    }
  }

  /** Every message in `new/` and `cur/`, with its envelope. */
  async #read(): Promise<CaughtMessage[]> {
    const { simpleParser } = await import('mailparser');
    const found: CaughtMessage[] = [];
    const ids = new Set<string>();
    for (const sub of ['new', 'cur']) {
      for (const file of await readdir(join(this.path, sub))) {
        const path = join(this.path, sub, file);
        const name = file.split(':')[0] ?? file;
        try {
          const [raw, info] = await Promise.all([readFile(path), stat(path)]);
          const parsed = await simpleParser(raw);
          const envelope = await this.#envelope(name, parsed, info.mtime);
          if (ids.has(envelope.id)) throw new Error(`${path}: a second message with id ${envelope.id}`);
          ids.add(envelope.id);
          this.#names.set(envelope.id, name);
          found.push(caughtMessage({ ...envelope, receivedAt: new Date(envelope.receivedAt), raw }, parsed));
        } catch (err) {
          this.#onError(err instanceof Error ? err : new Error(String(err)));
        }
      }
    }
    return found;
  }

  /** The envelope kept beside `name`, or one read from the message's own headers. */
  async #envelope(name: string, parsed: ParsedMail, mtime: Date): Promise<Envelope> {
    const kept = await readFile(join(this.path, SIDECARS, `${name}.json`), 'utf8').then(
      (text) => JSON.parse(text) as Partial<Envelope>,
      () => undefined,
    );
    if (
      kept !== undefined &&
      typeof kept.id === 'string' &&
      /^[\w.-]{1,64}$/.test(kept.id) &&
      typeof kept.mailFrom === 'string' &&
      Array.isArray(kept.rcptTos) &&
      typeof kept.receivedAt === 'string' &&
      !Number.isNaN(Date.parse(kept.receivedAt)) &&
      typeof kept.session === 'object' &&
      kept.session !== null
    ) {
      return kept as Envelope;
    }
    // The header lines as written: mailparser turns these two into address objects.
    const header = (key: string): string[] =>
      parsed.headerLines
        .filter((h) => h.key === key)
        .map((h) => {
          const value = h.line.slice(h.line.indexOf(':') + 1).trim();
          return /<([^>]*)>/.exec(value)?.[1] ?? value;
        });
    const addresses = (field: ParsedMail['to']): string[] =>
      (field === undefined ? [] : Array.isArray(field) ? field : [field]).flatMap((a) => a.value.map((v) => v.address ?? ''));
    const delivered = header('delivered-to');
    return {
      // Stable across restarts: the same file is the same id.
      id: `f${createHash('sha256').update(name).digest('hex').slice(0, 16)}`,
      mailFrom: header('return-path')[0] ?? '',
      rcptTos: delivered.length > 0 ? delivered : [...addresses(parsed.to), ...addresses(parsed.cc)].filter((a) => a !== ''),
      receivedAt: mtime.toISOString(),
      session: { remoteAddress: '', heloName: '', secure: false, user: undefined },
    };
  }
}
