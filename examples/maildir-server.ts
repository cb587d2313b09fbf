/**
 * A server that stores every message it receives in a Maildir, durably: the 250 goes out only once
 * the message is on disk. Read the mail with any Maildir reader (mutt -f ./mail, for example).
 *
 *   MAILDIR=./mail PORT=2525 npx tsx examples/maildir-server.ts
 *
 * The same from the command line: npx sirocco --handler maildir:./mail
 */
import { resolve } from 'node:path';
import { Application, Maildir, type MaildirSettings } from '../lib/index.js';
import { isMain, serve } from './serve.js';

export function createMaildirServer(maildir: string): Application<MaildirSettings> {
  return new Application(Maildir, { hostname: 'localhost', maildir: resolve(maildir) });
}

if (isMain(import.meta.url)) {
  const maildir = resolve(process.env.MAILDIR ?? './mail');
  await serve(createMaildirServer(maildir), `storing mail in ${maildir}; listening`, 2525);
}
