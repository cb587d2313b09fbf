/**
 * LMTP delivery into a mail store, as an MTA (Postfix's `lmtp` transport, for example) hands mail
 * to it: LMTP on a Unix socket, one Maildir per recipient, and one reply per recipient after the
 * data, so a recipient whose mailbox fails is retried alone while the others are done.
 *
 *   LMTP_SOCKET=./lmtp.sock MAILDIR=./mail npx tsx examples/lmtp-maildir.ts
 *
 * Then in Postfix's main.cf: virtual_transport = lmtp:unix:/path/to/lmtp.sock
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { IsString } from 'class-validator';
import { Application, Maildir, MaildirSettings, settingsSchema, SMTPError } from '../lib/index.js';
import { isMain } from './serve.js';

/** Maildir's settings, and the users who have a mailbox. */
export class MailboxesSettings extends MaildirSettings {
  /** The addresses that have a mailbox, comma-separated. */
  @IsString()
  users!: string;
}

/** Delivers to the Maildirs of known users only: anyone else is refused at RCPT. */
@settingsSchema(MailboxesSettings)
export class Mailboxes extends Maildir {
  override rcpt(address: string): void {
    const { users = '' } = this.settings as MaildirSettings & Partial<MailboxesSettings>;
    if (!users.split(',').includes(address.toLowerCase())) throw new SMTPError(550, [5, 1, 1], `No mailbox here for ${address}`);
  }
}

export function createLmtpServer(maildir: string, users: string): Application<MaildirSettings> {
  return new Application(Mailboxes, { hostname: 'localhost', lmtp: true, maildir: resolve(maildir), maildirPerRecipient: true, users });
}

if (isMain(import.meta.url)) {
  const socket = resolve(process.env.LMTP_SOCKET ?? './lmtp.sock');
  const maildir = resolve(process.env.MAILDIR ?? './mail');
  rmSync(socket, { force: true });
  const server = await createLmtpServer(maildir, process.env.USERS ?? 'alice@example.com,bob@example.com').listen(socket);
  console.log(`LMTP into ${maildir} on ${socket} (Ctrl-C to stop)`);
  const stop = (): void => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
