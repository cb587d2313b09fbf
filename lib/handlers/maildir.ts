import { copyFile, link, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { IsBoolean, IsNotEmpty, IsOptional, IsString } from '../app/validators.js';
import { RequestHandler } from '../app/request-handler.js';
import { settingsSchema } from '../app/settings-schema.js';
import { REPLIES } from '../protocol/replies.js';
import { SMTPError } from '../protocol/reply.js';
import { traceHeaders } from './trace.js';
import { syncDirectory } from '../storage/folders.js';
import { MAX_FOLDER_BYTES, mailboxFolder } from '../storage/folder-names.js';
import { maildirName, prepareMaildir } from '../storage/maildir-files.js';

/** No trace fields (`maildirTraceHeaders: false`). */
const NONE = Buffer.alloc(0);

/**
 * Settings of {@link Maildir}.
 *
 * @example
 * ```ts
 * new Application(Maildir, { maildir: '/var/mail/in', maildirTraceHeaders: false } satisfies MaildirSettings);
 * ```
 */
export class MaildirSettings {
  /** The Maildir's path; `tmp/`, `new/` and `cur/` are made if missing. */
  @IsString()
  @IsNotEmpty()
  maildir!: string;

  /** Whether to add `Return-Path` and `Received` (RFC 5321 §4.4). Default true. */
  @IsOptional()
  @IsBoolean()
  maildirTraceHeaders?: boolean;

  /**
   * One Maildir per recipient, `<maildir>/<address>/`, instead of one for all. Under `lmtp` each
   * recipient then gets its own reply: a failed delivery refuses that recipient alone.
   * Default false.
   */
  @IsOptional()
  @IsBoolean()
  maildirPerRecipient?: boolean;
}

/**
 * A recipient's folder under `maildirPerRecipient` (see `mailboxFolder`: canonical, reversibly
 * escaped, never outside the Maildir root). The POP3 server's `MaildirStore` finds a user's mail
 * by the same rule. Throws for an address whose folder name would pass 255 bytes; the handler
 * refuses such a recipient at RCPT.
 *
 * @example
 * ```ts
 * recipientFolder('"Bob"@Example.com'); // 'bob@example.com'
 * ```
 */
export function recipientFolder(address: string): string {
  const folder = mailboxFolder(address);
  if (folder === undefined) throw new RangeError(`the folder name of ${address} would be longer than ${MAX_FOLDER_BYTES} bytes`);
  return folder;
}

/**
 * Stores each message in a Maildir, written to `tmp/` while it arrives (the handler streams),
 * flushed to disk, renamed into `new/`, and `new/` itself flushed, all before the 250 goes out: a
 * message that was acknowledged survives a crash of the process or of the machine. A failed write
 * answers `451 4.3.0`, never 250, and a refused or aborted message leaves nothing in `tmp/`.
 *
 * With `maildirPerRecipient`, each recipient has a Maildir of its own under the root; the file is
 * written once and linked into each. Under `lmtp`, a recipient whose delivery failed is answered
 * `451 4.3.0` alone while the others get 250.
 *
 * @example
 * ```ts
 * await new Application(Maildir, { maildir: '/var/mail/inbound' }).listen(2525);
 * ```
 */
@settingsSchema(MaildirSettings)
export class Maildir extends RequestHandler<MaildirSettings> {
  static override streaming = true;

  /** Under `maildirPerRecipient`, an address with no possible folder is refused now, not after the data. */
  override rcpt(address: string): void {
    if (this.settings.maildirPerRecipient === true && mailboxFolder(address) === undefined) {
      throw new SMTPError(550, [5, 1, 1], 'Mailbox name too long to be stored here', {
        logMessage: `the folder name of ${address} would pass ${MAX_FOLDER_BYTES} bytes`,
      });
    }
  }

  override async data(): Promise<void> {
    const root = this.settings.maildir;
    const name = maildirName(Date.now());
    const folders = this.settings.maildirPerRecipient === true ? [...new Set(this.request.rcptTos.map(recipientFolder))] : [''];
    const first = join(root, folders[0] ?? '');
    const tmpPath = join(first, 'tmp', name);
    let file: FileHandle | undefined;
    try {
      prepareMaildir(first);
      file = await open(tmpPath, 'wx', 0o600);
      const trace = this.settings.maildirTraceHeaders !== false ? Buffer.from(traceHeaders(this.request, this.settings.hostname)) : NONE;
      const verified = this.settings.mailAuth === true;
      if (!verified) await file.write(trace);
      // Each chunk is written before the next is asked for: lent chunks, whose memory is read into again.
      for await (const part of this.request.lentChunks()) await file.write(part);
      if (verified) file = await this.#underResults(file, tmpPath, trace);
      await file.sync();
      await file.close();
      file = undefined;
    } catch (err) {
      await file?.close().catch(() => undefined);
      await unlink(tmpPath).catch(() => undefined);
      // A refusal (DMARC under dmarcEnforce) stands as it is; a failed write is a 451.
      throw err instanceof SMTPError ? err : this.#failure(root, err);
    }
    // The other recipients' copies are links to the written file (copies across file systems);
    // the first folder's file is renamed last, so nothing stays behind in tmp/.
    const failed = new Map<string, unknown>();
    for (const folder of folders.slice(1)) {
      try {
        await this.#deliverCopy(tmpPath, join(root, folder), name);
      } catch (err) {
        failed.set(folder, err);
      }
    }
    try {
      await rename(tmpPath, join(first, 'new', name));
      await syncDirectory(join(first, 'new'));
    } catch (err) {
      await unlink(tmpPath).catch(() => undefined);
      failed.set(folders[0] ?? '', err);
    }
    if (failed.size === folders.length) throw this.#failure(root, failed.values().next().value);
    if (failed.size > 0) this.#refuseFailed(root, failed);
    this.log.info({ file: name, folders: folders.length - failed.size }, 'stored in maildir');
  }

  /**
   * With `mailAuth`: the verdict is known once the message has ended, and goes on top of it with
   * the trace fields, so the body written so far moves below them (written twice: the price of a
   * streaming handler's header that depends on the whole message). Rejects with the refusal.
   */
  async #underResults(file: FileHandle, path: string, trace: Buffer): Promise<FileHandle> {
    const auth = await this.request.authenticated();
    await file.close();
    const body = `${path}.body`;
    await rename(path, body);
    try {
      const whole = await open(path, 'wx', 0o600);
      const source = await open(body, 'r');
      try {
        await whole.write(Buffer.concat([trace, Buffer.from(auth?.header ?? '')]));
        const chunk = Buffer.allocUnsafe(64 * 1024);
        for (
          let n = (await source.read(chunk, 0, chunk.length)).bytesRead;
          n > 0;
          n = (await source.read(chunk, 0, chunk.length)).bytesRead
        )
          await whole.write(chunk, 0, n);
      } catch (err) {
        await whole.close();
        throw err;
      } finally {
        await source.close();
      }
      return whole;
    } finally {
      await unlink(body).catch(() => undefined);
    }
  }

  /** Puts a copy of the written file into `folder/new/`: linked (or copied) into its `tmp/`, flushed, renamed. */
  async #deliverCopy(written: string, folder: string, name: string): Promise<void> {
    prepareMaildir(folder);
    const tmp = join(folder, 'tmp', name);
    try {
      await link(written, tmp);
    } catch {
      await copyFile(written, tmp);
      const copy = await open(tmp, 'r');
      await copy.sync().finally(() => copy.close());
    }
    try {
      await rename(tmp, join(folder, 'new', name));
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await syncDirectory(join(folder, 'new'));
  }

  /**
   * Some recipients' folders failed. Under LMTP they alone are refused. In SMTP one reply covers
   * every recipient: the message is refused with 451 so the client retries, and the recipients
   * already served may get it twice, which is better than never.
   */
  #refuseFailed(root: string, failed: Map<string, unknown>): void {
    this.log.error({ folders: [...failed.keys()] }, 'maildir delivery failed for some recipients');
    if (this.settings.lmtp !== true) throw this.#failure(root, failed.values().next().value);
    this.request.rcptTos.forEach((address, i) => {
      if (failed.has(recipientFolder(address))) this.failRecipient(i, REPLIES.localError());
    });
  }

  #failure(root: string, err: unknown): SMTPError {
    return SMTPError.from(REPLIES.localError(), {
      logMessage: `maildir delivery to ${root} failed: ${err instanceof Error ? err.message : String(err)}`,
      cause: err,
    });
  }
}
