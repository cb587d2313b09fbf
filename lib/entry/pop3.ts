/**
 * `sirocco/pop3`: a POP3 server (RFC 1939, STLS, RFC 2449 capabilities) over Maildir folders or
 * any {@link Pop3Store}, on the same connection kit as the SMTP server.
 *
 * @example
 * ```ts
 * import { MaildirStore, Pop3Server } from 'sirocco/pop3';
 *
 * const users = new Map([['bob', 's3cret']]);
 * const pop3 = new Pop3Server({
 *   store: new MaildirStore('/var/mail', { perUser: true }),
 *   authenticate: (c) => 'password' in c && users.get(c.username) === c.password,
 * });
 * await pop3.listen(1110, '127.0.0.1');
 * ```
 * @module sirocco/pop3
 */
export { Pop3Server } from '../pop3/pop3-server.js';
export type { Pop3Authenticator, Pop3Client, Pop3ServerOptions } from '../pop3/options.js';
export { MaildirStore, type MaildirStoreOptions, type Pop3Store, type Pop3Maildrop } from '../pop3/maildir-store.js';
export type { Pop3Message } from '../pop3/session.js';
