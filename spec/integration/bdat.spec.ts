/** BDAT / CHUNKING and BINARYMIME (RFC 3030), over real sockets with exact bytes. */
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, recordingHandler, startServer, until, type Received } from '../helpers/server.js';

afterEach(closeServers);

const QUEUED = /^250 2\.0\.0 Ok: queued as [0-9A-Z]{12}\r\n$/;

async function inRcpt(port: number, mail = 'MAIL FROM:<a@b.test>'): Promise<RawClient> {
  const client = await RawClient.ehlo(port);
  expect(await client.command(mail)).toBe('250 2.1.0 Sender ok\r\n');
  expect(await client.command('RCPT TO:<c@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
  return client;
}

describe('BDAT', () => {
  it('takes a message in chunks, answers each, and hands the handler the bytes as they came', async () => {
    const received: Received[] = [];
    const { port } = await startServer(recordingHandler(received));
    const client = await inRcpt(port);
    client.write('BDAT 5\r\nHello');
    expect(await client.reply()).toBe('250 2.0.0 5 octets received\r\n');
    client.write('BDAT 9 LAST\r\n Wo\nrld\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(received[0]?.body.toString('latin1')).toBe('Hello Wo\nrld\r\n');
    expect(await client.command('QUIT')).toBe('221 2.0.0 Bye\r\n');
  });

  it('answers pipelined chunks in order, in one go, with BDAT 0 LAST ending the message', async () => {
    const received: Received[] = [];
    const { port } = await startServer(recordingHandler(received));
    const client = await RawClient.ehlo(port);
    client.write('MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nBDAT 3\r\nabcBDAT 3\r\ndefBDAT 0 LAST\r\nNOOP\r\n');
    expect(await client.reply()).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.reply()).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await client.reply()).toBe('250 2.0.0 3 octets received\r\n');
    expect(await client.reply()).toBe('250 2.0.0 3 octets received\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(await client.reply()).toBe('250 2.0.0 Ok\r\n');
    expect(received[0]?.body.toString()).toBe('abcdef');
  });

  it('reads a chunk with a line far past the command-line limit, NUL bytes and all', async () => {
    const received: Received[] = [];
    const { port } = await startServer(recordingHandler(received));
    const client = await inRcpt(port);
    const payload = Buffer.concat([Buffer.alloc(5000, 'x'), Buffer.from([0, 0x0d, 0xff, 0x0a])]);
    client.write(Buffer.concat([Buffer.from(`BDAT ${payload.length} LAST\r\n`), payload]));
    expect(await client.reply()).toMatch(QUEUED);
    expect(received[0]?.body.equals(payload)).toBe(true);
  });

  it('refuses a size that is not 1 to 15 digits with 501, and allocates nothing', async () => {
    const { port } = await startServer();
    const client = await inRcpt(port);
    expect(await client.command('BDAT 12345678901234567890 LAST')).toBe(
      '501 5.5.4 Syntax: BDAT chunk-size [LAST], chunk-size at most 15 digits\r\n',
    );
    expect(await client.command('BDAT -1')).toBe('501 5.5.4 Syntax: BDAT chunk-size [LAST], chunk-size at most 15 digits\r\n');
    expect(await client.command('BDAT 5 FIRST')).toBe('501 5.5.4 Syntax: BDAT chunk-size [LAST], chunk-size at most 15 digits\r\n');
    expect(await client.command('BDAT')).toBe('501 5.5.4 Syntax: BDAT chunk-size [LAST], chunk-size at most 15 digits\r\n');
    client.close();
  });

  it('reads and drops the chunk of a BDAT out of order, never running what is inside it', async () => {
    const { port } = await startServer();
    const client = await RawClient.ehlo(port);
    client.write('BDAT 6\r\nQUIT\r\n');
    expect(await client.reply()).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
    expect(await client.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    client.write('BDAT 6 LAST\r\nRSET\r\n');
    expect(await client.reply()).toBe('503 5.5.1 Bad sequence of commands: need RCPT command\r\n');
    expect(await client.command('RCPT TO:<c@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    client.close();
  });

  it('checks the running total against maxMessageSize before reading a chunk: 552, the chunk still read', async () => {
    let finished = 0;
    const { port } = await startServer(
      class extends RequestHandler {
        override onFinish(): void {
          finished++;
        }
      },
      { maxMessageSize: 10 },
    );
    const client = await inRcpt(port);
    client.write('BDAT 6\r\n123456');
    expect(await client.reply()).toBe('250 2.0.0 6 octets received\r\n');
    client.write('BDAT 6 LAST\r\nNOOP\r\n');
    expect(await client.reply()).toBe('552 5.3.4 Message size exceeds fixed maximum message size\r\n');
    // The transaction failed (RFC 3030 §2): a further chunk is out of order, its bytes dropped too.
    client.write('BDAT 6\r\nNOOP\r\n');
    expect(await client.reply()).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
    await until(() => finished === 1);
    const again = await inRcpt(port);
    again.write('BDAT 10 LAST\r\n0123456789');
    expect(await again.reply()).toMatch(QUEUED);
  });

  it('keeps DATA and BDAT apart: BINARYMIME needs BDAT, DATA after a chunk is 503', async () => {
    const { port } = await startServer();
    const client = await inRcpt(port, 'MAIL FROM:<a@b.test> BODY=BINARYMIME');
    expect(await client.command('DATA')).toBe('503 5.5.1 Bad sequence of commands: BODY=BINARYMIME requires BDAT\r\n');
    client.write(Buffer.from([...Buffer.from('BDAT 2\r\n'), 0x00, 0xff]));
    expect(await client.reply()).toBe('250 2.0.0 2 octets received\r\n');
    expect(await client.command('DATA')).toBe('503 5.5.1 Bad sequence of commands: DATA after BDAT\r\n');
    expect(await client.command('RCPT TO:<e@f.test>')).toBe('503 5.5.1 Bad sequence of commands: BDAT chunks in progress\r\n');
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('503 5.5.1 Bad sequence of commands: BDAT chunks in progress\r\n');
    client.write('BDAT 1 LAST\r\n!');
    expect(await client.reply()).toMatch(QUEUED);
  });

  it('aborts cleanly on RSET between chunks and on a disconnect inside one', async () => {
    const events: string[] = [];
    const { port } = await startServer(
      class extends RequestHandler {
        override data(): void {
          events.push('data');
        }
        override onConnectionClose(): void {
          events.push('close');
        }
        override onFinish(): void {
          events.push('finish');
        }
      },
    );
    const client = await inRcpt(port);
    client.write('BDAT 3\r\nabc');
    expect(await client.reply()).toBe('250 2.0.0 3 octets received\r\n');
    expect(await client.command('RSET')).toBe('250 2.0.0 Ok\r\n');
    expect(events).toEqual(['finish']);
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO:<c@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    client.write('BDAT 100 LAST\r\nonly part of it');
    await new Promise((r) => setTimeout(r, 50));
    client.close();
    await until(() => events.length === 3);
    expect(events).toEqual(['finish', 'close', 'finish']);
  });

  it('is not offered, and its chunk is still dropped, with chunking off', async () => {
    const { port } = await startServer(RequestHandler, { chunking: false });
    const client = await RawClient.connect(port);
    await client.reply();
    expect(await client.command('EHLO c.test')).not.toContain('CHUNKING');
    expect(await client.command('MAIL FROM:<a@b.test> BODY=BINARYMIME')).toBe('501 5.5.4 BODY=BINARYMIME not supported\r\n');
    client.write('BDAT 6\r\nQUIT\r\n');
    expect(await client.reply()).toBe('502 5.5.1 BDAT not implemented\r\n');
    expect(await client.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
  });

  it('gives the same replies and body whatever way the input is cut into reads', async () => {
    const received: Received[] = [];
    const { port } = await startServer(recordingHandler(received));
    const input = 'MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nBDAT 4\r\nab\r\nBDAT 3 LAST\r\nxyzNOOP\r\n';
    const expected = ['250 2.1.0 Sender ok\r\n', '250 2.1.5 Recipient ok\r\n', '250 2.0.0 4 octets received\r\n'];
    for (let split = 1; split < input.length; split++) {
      const client = await RawClient.ehlo(port);
      client.write(input.slice(0, split));
      await new Promise((r) => setTimeout(r, 2));
      client.write(input.slice(split));
      for (const line of expected) expect(await client.reply()).toBe(line);
      expect(await client.reply()).toMatch(QUEUED);
      expect(await client.reply()).toBe('250 2.0.0 Ok\r\n');
      client.close();
    }
    expect(received).toHaveLength(input.length - 1);
    for (const message of received) expect(message.body.toString()).toBe('ab\r\nxyz');
  });
});
