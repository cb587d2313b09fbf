/**
 * The classic first SMTP server: accepts mail for example.com and prints each message as it
 * arrives. `npm start` runs it on 127.0.0.1:2525; try it with
 * `swaks --server 127.0.0.1:2525 --to someone@example.com` or Python's smtplib.
 */
import { Application, RequestHandler, SMTPError } from '../lib/index.js';
import { isMain, serve } from './serve.js';

export class ExampleComHandler extends RequestHandler<{ domain: string }> {
  override rcpt(address: string): void {
    if (!address.toLowerCase().endsWith(`@${this.settings.domain}`)) {
      throw new SMTPError(550, [5, 7, 1], 'not relaying to that domain');
    }
  }

  override data(): void {
    const { mailFrom, rcptTos, body, id } = this.request;
    const lines = [
      `---------- message ${id} ----------`,
      `From: <${mailFrom}>`,
      `To: ${rcptTos.map((r) => `<${r}>`).join(', ')}`,
      `Peer: ${this.request.session.remoteAddress} (${this.request.session.heloName})`,
      '',
      body.toString('utf8').replace(/\r\n$/, '').replace(/\r\n/g, '\n'),
      `---------- end of message ${id} ----------`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
  }
}

export function createApplication(domain = 'example.com'): Application<{ domain: string }> {
  return new Application(ExampleComHandler, { hostname: 'localhost', domain });
}

if (isMain(import.meta.url)) await serve(createApplication(), 'Sirocco is accepting mail for example.com', 2525);
