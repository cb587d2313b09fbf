/** Real clients: Python's smtplib and nodemailer, over loopback. */
import { afterEach, describe, expect, it } from 'vitest';
import { plainTransport } from '../helpers/mailer.js';
import { RequestHandler, SMTPError, type HandlerClass } from '../../lib/index.js';
import { runPython } from '../helpers/python.js';
import { closeServers, startServer, type Received } from '../helpers/server.js';

afterEach(closeServers);

function exampleCom(received: Received[]): HandlerClass {
  return class ExampleCom extends RequestHandler {
    override rcpt(address: string): void {
      if (!address.endsWith('@example.com')) throw new SMTPError(550, [5, 7, 1], 'not relaying to that domain');
    }
    override data(): void {
      received.push({ mailFrom: this.request.mailFrom, rcptTos: [...this.request.rcptTos], body: this.request.body });
    }
  };
}

describe("Python's smtplib", () => {
  it('sends with sendmail() and sees SMTPRecipientsRefused for a 550 at RCPT', async () => {
    const received: Received[] = [];
    const { port } = await startServer(exampleCom(received));
    const out = await runPython(
      `
import os, smtplib, json
s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']), timeout=10)
result = {'ehlo': s.ehlo()[0], 'features': sorted(s.esmtp_features)}
refused = s.sendmail('from@sender.test', ['a@example.com', 'b@elsewhere.test'],
                     'Subject: hi\\r\\n\\r\\n.leading dot\\r\\nbody\\r\\n')
result['refused'] = {k: [v[0], v[1].decode()] for k, v in refused.items()}
try:
    s.sendmail('from@sender.test', ['c@elsewhere.test'], 'Subject: no\\r\\n\\r\\nx\\r\\n')
except smtplib.SMTPRecipientsRefused as e:
    result['all_refused'] = {k: [v[0], v[1].decode()] for k, v in e.recipients.items()}
result['quit'] = s.quit()[0]
print(json.dumps(result))
`,
      port,
    );
    expect(JSON.parse(out)).toEqual({
      ehlo: 250,
      features: ['8bitmime', 'binarymime', 'chunking', 'enhancedstatuscodes', 'pipelining', 'size', 'smtputf8'],
      refused: { 'b@elsewhere.test': [550, '5.7.1 not relaying to that domain'] },
      all_refused: { 'c@elsewhere.test': [550, '5.7.1 not relaying to that domain'] },
      quit: 221,
    });
    expect(received).toEqual([
      { mailFrom: 'from@sender.test', rcptTos: ['a@example.com'], body: Buffer.from('Subject: hi\r\n\r\n.leading dot\r\nbody\r\n') },
    ]);
  });

  it('sends SMTPUTF8 mail and sees a 552 for an over-size message', async () => {
    const received: Received[] = [];
    const { port } = await startServer(exampleCom(received), { maxMessageSize: 2000 });
    const out = await runPython(
      `
import os, smtplib, json
s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']), timeout=10)
s.sendmail('jörg@bücher.test', ['ünï@example.com'], 'Subject: ü\\r\\n\\r\\nGrüße\\r\\n'.encode(), mail_options=['SMTPUTF8'])
try:
    s.sendmail('a@b.test', ['x@example.com'], 'x' * 5000)
except smtplib.SMTPSenderRefused as e:
    print(json.dumps([e.smtp_code, e.smtp_error.decode()]))
s.quit()
`,
      port,
    );
    expect(JSON.parse(out)).toEqual([552, '5.3.4 Message size exceeds fixed maximum message size']);
    expect(received[0]).toMatchObject({ mailFrom: 'jörg@bücher.test', rcptTos: ['ünï@example.com'] });
    expect(received[0]?.body.toString()).toBe('Subject: ü\r\n\r\nGrüße\r\n');
  });
});

describe('nodemailer', () => {
  it('sends a message with an attachment that mailparser reads back', async () => {
    const parsed: { subject?: string | undefined; text?: string | undefined; attachment?: string | undefined }[] = [];
    class Parsing extends RequestHandler {
      override async data(): Promise<void> {
        const mail = await this.request.parse();
        parsed.push({ subject: mail.subject, text: mail.text, attachment: mail.attachments[0]?.content.toString() });
      }
    }
    const { port } = await startServer(Parsing);
    const transport = plainTransport(port);
    const info = await transport.sendMail({
      from: 'sender@sender.test',
      to: ['a@example.com', 'b@example.com'],
      subject: 'Grüße',
      text: 'hello\n.\nworld',
      attachments: [{ filename: 'a.txt', content: 'attached' }],
    });
    transport.close();
    expect(info.accepted).toEqual(['a@example.com', 'b@example.com']);
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-Z]{12}$/);
    expect(parsed).toEqual([{ subject: 'Grüße', text: 'hello\n.\nworld', attachment: 'attached' }]);
  });

  it('sees a handler refusal as a rejected send', async () => {
    const { port } = await startServer(exampleCom([]));
    const transport = plainTransport(port);
    await expect(transport.sendMail({ from: 'a@b.test', to: 'x@elsewhere.test', text: 'x' })).rejects.toMatchObject({
      responseCode: 550,
      response: '550 5.7.1 not relaying to that domain',
    });
    transport.close();
  });

  it('sends many messages over one pooled connection', async () => {
    const received: Received[] = [];
    const { port } = await startServer(exampleCom(received));
    const transport = plainTransport(port, { pool: true, maxConnections: 1 });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => transport.sendMail({ from: 'a@b.test', to: 'x@example.com', subject: `n${i}`, text: 'x' })),
    );
    transport.close();
    expect(received).toHaveLength(20);
  });
});
