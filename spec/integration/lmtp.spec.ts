/** LMTP (RFC 2033): LHLO, one reply per recipient, over TCP and a Unix socket, with Python's smtplib.LMTP. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Application, RequestHandler, SMTPError, SMTPServer } from '../../lib/index.js';
import { runPython } from '../helpers/python.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, silent, startServer } from '../helpers/server.js';

afterEach(closeServers);

const QUEUED = /^250 2\.0\.0 Ok: queued as [0-9A-Z]{12}\r\n$/;
const LHLO_REPLY =
  '250-mx.test greets c.test\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n';

/** Refuses recipients whose local part says so: `full` 452 by index, `gone` 550 by address. */
class PerRecipient extends RequestHandler {
  override data(): void {
    this.request.rcptTos.forEach((address, i) => {
      if (address.startsWith('full')) this.failRecipient(i, new SMTPError(452, [4, 2, 2], 'Mailbox full'));
    });
    if (this.request.rcptTos.includes('gone@d.test')) this.failRecipient('gone@d.test', new SMTPError(550, [5, 1, 1], 'No such user'));
  }
}

async function lhlo(port: number | string, size = 26214400): Promise<RawClient> {
  const client = await RawClient.connect(port);
  expect(await client.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
  expect(await client.command('LHLO c.test')).toBe(LHLO_REPLY.replace('26214400', String(size)));
  return client;
}

describe('LMTP', () => {
  it('greets with LHLO only; HELO and EHLO are refused', async () => {
    const { port } = await startServer(RequestHandler, { lmtp: true });
    const client = await RawClient.connect(port);
    await client.reply();
    expect(await client.command('HELO c.test')).toBe('500 5.5.1 This is an LMTP server: greet with LHLO\r\n');
    expect(await client.command('EHLO c.test')).toBe('500 5.5.1 This is an LMTP server: greet with LHLO\r\n');
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('503 5.5.1 Bad sequence of commands: send LHLO first\r\n');
    expect(await client.command('LHLO c.test')).toBe(LHLO_REPLY);
  });

  it('is refused as LHLO by an SMTP server', async () => {
    const { port } = await startServer();
    const client = await RawClient.connect(port);
    await client.reply();
    expect(await client.command('LHLO c.test')).toBe('500 5.5.2 Command not recognized\r\n');
  });

  it('answers each accepted recipient after DATA, in RCPT order, duplicates each on their own line', async () => {
    const { port } = await startServer(PerRecipient, { lmtp: true });
    const client = await lhlo(port);
    client.write(
      'MAIL FROM:<a@b.test>\r\nRCPT TO:<ok@d.test>\r\nRCPT TO:<full@d.test>\r\nRCPT TO:<gone@d.test>\r\nRCPT TO:<ok@d.test>\r\nDATA\r\n',
    );
    expect(await client.reply()).toBe('250 2.1.0 Sender ok\r\n');
    for (let i = 0; i < 4; i++) expect(await client.reply()).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await client.reply()).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    client.write('Subject: t\r\n\r\nbody\r\n.\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(await client.reply()).toBe('452 4.2.2 Mailbox full\r\n');
    expect(await client.reply()).toBe('550 5.1.1 No such user\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(await client.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
  });

  it('gives every recipient the refusal when data() throws, and after BDAT LAST too', async () => {
    const { port } = await startServer(
      class extends RequestHandler {
        override data(): void {
          throw new SMTPError(554, [5, 6, 0], 'Content refused');
        }
      },
      { lmtp: true },
    );
    const client = await lhlo(port);
    client.write('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\nRCPT TO:<y@d.test>\r\nBDAT 5 LAST\r\nhello');
    await client.reply();
    await client.reply();
    await client.reply();
    expect(await client.reply()).toBe('554 5.6.0 Content refused\r\n');
    expect(await client.reply()).toBe('554 5.6.0 Content refused\r\n');
    expect(await client.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
  });

  it('answers a message too big once per recipient', async () => {
    const { port } = await startServer(RequestHandler, { lmtp: true, maxMessageSize: 10 });
    const client = await lhlo(port, 10);
    client.write('MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\nRCPT TO:<y@d.test>\r\nDATA\r\n');
    for (let i = 0; i < 4; i++) await client.reply();
    client.write(`${'z'.repeat(50)}\r\n.\r\n`);
    expect(await client.reply()).toBe('552 5.3.4 Message size exceeds fixed maximum message size\r\n');
    expect(await client.reply()).toBe('552 5.3.4 Message size exceeds fixed maximum message size\r\n');
  });

  it('refuses failRecipient() in SMTP, where one reply covers every recipient', async () => {
    const { port } = await startServer(PerRecipient);
    const client = await RawClient.inData(port, 'a@b.test', ['full@d.test']);
    client.write('x\r\n.\r\n');
    expect(await client.reply()).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
  });

  it("serves Python's smtplib.LMTP over TCP and over a Unix socket, each recipient its reply", async () => {
    const script = (target: string): string => `
import os, smtplib, json
target = ${target}
lmtp = smtplib.LMTP(target) if target.startswith('/') else smtplib.LMTP('127.0.0.1', int(target))
lmtp.ehlo_or_helo_if_needed()
esmtp = lmtp.does_esmtp and 'chunking' in lmtp.esmtp_features
lmtp.mail('a@b.test')
for r in ['ok@d.test', 'full@d.test', 'gone@d.test']:
    lmtp.rcpt(r)
codes = [lmtp.data(b'Subject: py\\r\\n\\r\\nhi\\r\\n')[0]]
codes += [lmtp.getreply()[0] for _ in range(2)]
lmtp.quit()
print(json.dumps({'lmtp': esmtp, 'codes': codes}))
`;
    const { port } = await startServer(PerRecipient, { lmtp: true });
    expect(JSON.parse(await runPython(script('os.environ["PORT"]'), port))).toEqual({ lmtp: true, codes: [250, 452, 550] });

    const dir = mkdtempSync(join(tmpdir(), 'sirocco-lmtp-'));
    const path = join(dir, 'lmtp.sock');
    const server = new SMTPServer(new Application(PerRecipient, { hostname: 'mx.test', logger: silent, lmtp: true }));
    try {
      await server.listen(path);
      const out = await runPython(script(`'${path}'`), 0);
      expect(JSON.parse(out)).toEqual({ lmtp: true, codes: [250, 452, 550] });
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
