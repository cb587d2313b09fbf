/** nodemailer transports to a test server on loopback: plaintext, STARTTLS or implicit TLS. */
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';

/** What may be added to a test transport's options (pooling too). */
type Options = SMTPTransport.Options & Partial<Omit<SMTPPool.Options, keyof SMTPTransport.Options>>;

/** Plaintext only: the transport never tries STARTTLS. */
export function plainTransport(port: number, extra: Options = {}): Transporter<SMTPTransport.SentMessageInfo> {
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, ...extra } as SMTPTransport.Options);
}

/** TLS verified against the test CA: after STARTTLS (required), or from the first byte (`implicit`). */
export function tlsTransport(
  port: number,
  ca: Buffer,
  how: 'starttls' | 'implicit',
  extra: Options = {},
): Transporter<SMTPTransport.SentMessageInfo> {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: how === 'implicit',
    ...(how === 'starttls' ? { requireTLS: true } : {}),
    tls: { ca: [ca], servername: 'localhost' },
    ...extra,
  } as SMTPTransport.Options);
}
