import { mkdirSync } from 'node:fs';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { IsBoolean, IsNotEmpty, IsOptional, IsString } from '../app/validators.js';
import { RequestHandler } from '../app/request-handler.js';
import { settingsSchema } from '../app/settings.js';
import { REPLIES } from '../protocol/replies.js';
import { SMTPError } from '../protocol/reply.js';
import { traceHeaders } from './trace.js';

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
}

let delivered = 0;
// The Maildir spec asks for a host name without "/" or ":" in unique names.
const HOST = osHostname().replace(/\//g, '\\057').replace(/:/g, '\\072');

/** A unique file name as the Maildir spec describes: time, then microseconds, pid and a counter, then host. */
function uniqueName(now: number): string {
  const seconds = Math.floor(now / 1000);
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000) % 1_000_000;
  return `${seconds}.M${micros}P${process.pid}Q${++delivered}.${HOST}`;
}

/** Makes `tmp/`, `new/` and `cur/` under `path` (mode 0700), once per path. */
const prepared = new Set<string>();
function prepare(path: string): void {
  if (prepared.has(path)) return;
  for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(path, sub), { recursive: true, mode: 0o700 });
  prepared.add(path);
}

async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * Stores each message in a Maildir. The message is written to `tmp/`, flushed to disk, renamed
 * into `new/`, and `new/` itself is flushed, all before the 250 goes out: a message that was
 * acknowledged survives a crash of the process or of the machine. A failed write answers
 * `451 4.3.0`, never 250.
 *
 * @example
 * ```ts
 * await new Application(Maildir, { maildir: '/var/mail/inbound' }).listen(2525);
 * ```
 */
@settingsSchema(MaildirSettings)
export class Maildir extends RequestHandler<MaildirSettings> {
  override async data(): Promise<void> {
    const root = this.settings.maildir;
    const name = uniqueName(Date.now());
    const tmpPath = join(root, 'tmp', name);
    const newPath = join(root, 'new', name);
    let file: FileHandle | undefined;
    try {
      prepare(root);
      file = await open(tmpPath, 'wx', 0o600);
      if (this.settings.maildirTraceHeaders !== false) await file.write(traceHeaders(this.request, this.settings.hostname));
      await file.write(this.request.body);
      await file.sync();
      await file.close();
      file = undefined;
      await rename(tmpPath, newPath);
      await syncDirectory(join(root, 'new'));
    } catch (err) {
      await file?.close().catch(() => undefined);
      throw SMTPError.from(REPLIES.localError(), {
        logMessage: `maildir delivery to ${root} failed: ${err instanceof Error ? err.message : String(err)}`,
        cause: err,
      });
    }
    this.log.info({ file: newPath }, 'stored in maildir');
  }
}
