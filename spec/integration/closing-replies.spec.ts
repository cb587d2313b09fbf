/** A hook's 421 closes the connection after it (RFC 5321 §3.8); DropConnection drops it without a reply. */
import { afterEach, describe, expect, it } from 'vitest';
import { DropConnection, RequestHandler, SMTPError } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer } from '../helpers/server.js';

afterEach(closeServers);

class Closing extends RequestHandler {
  override rcpt(address: string): void {
    if (address.startsWith('close@')) throw new SMTPError(421, [4, 3, 0], 'going away');
    if (address.startsWith('drop@')) throw new DropConnection();
  }
}

describe('closing replies', () => {
  it("closes the connection after a handler's 421, and reads nothing more", async () => {
    const { port } = await startServer(Closing);
    const client = await RawClient.ehlo(port);
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    client.write('RCPT TO:<close@d.test>\r\nRCPT TO:<other@d.test>\r\n');
    expect(await client.closedByServer()).toBe('421 4.3.0 going away\r\n');
  });

  it('drops the connection without a reply when a hook throws DropConnection, after the replies before it', async () => {
    const { port } = await startServer(Closing);
    const client = await RawClient.ehlo(port);
    client.write('MAIL FROM:<a@b.test>\r\nRCPT TO:<drop@d.test>\r\nNOOP\r\n');
    expect(await client.closedByServer()).toBe('250 2.1.0 Sender ok\r\n');
  });

  it('drops at HELO and at connect too', async () => {
    const atHelo = await startServer(RequestHandler, {
      onHelo: () => {
        throw new DropConnection();
      },
    });
    const client = await RawClient.greeted(atHelo.port);
    client.write('EHLO c.test\r\n');
    expect(await client.closedByServer()).toBe('');
    const atConnect = await startServer(RequestHandler, {
      onConnect: () => {
        throw new DropConnection();
      },
    });
    const silent = await RawClient.connect(atConnect.port);
    expect(await silent.closedByServer()).toBe('');
  });
});

class Gatekeeper extends RequestHandler {
  override async beforeData(): Promise<void> {
    await new Promise((r) => setTimeout(r, 5));
    if (this.request.rcptTos.includes('full@d.test')) throw new SMTPError(452, [4, 2, 2], 'Mailbox full');
  }
}

describe('beforeData()', () => {
  it('refuses at DATA instead of the 354; the envelope stays for another try', async () => {
    const { port } = await startServer(Gatekeeper);
    const client = await RawClient.ehlo(port);
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO:<full@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await client.command('DATA')).toBe('452 4.2.2 Mailbox full\r\n');
    expect(await client.command('DATA')).toBe('452 4.2.2 Mailbox full\r\n');
    expect(await client.command('RSET')).toMatch(/^250 /);
    expect(await client.command('MAIL FROM:<a@b.test>')).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<ok@d.test>')).toMatch(/^250 /);
    expect(await client.command('DATA')).toMatch(/^354 /);
    expect(await client.command('Subject: x\r\n\r\nx\r\n.')).toMatch(/^250 2\.0\.0 Ok: queued as /);
  });

  it('refuses the first BDAT chunk, reading its bytes, and fails the transaction', async () => {
    const { port } = await startServer(Gatekeeper, { chunking: true });
    const client = await RawClient.ehlo(port);
    expect(await client.command('MAIL FROM:<a@b.test>')).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<full@d.test>')).toMatch(/^250 /);
    client.write('BDAT 5 LAST\r\nhello');
    expect(await client.reply()).toBe('452 4.2.2 Mailbox full\r\n');
    expect(await client.command('NOOP')).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<ok@d.test>')).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
  });
});
