/** RFC 5321 and its extensions over a real socket, exact reply lines. */
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, recordingHandler, startServer, type Received } from '../helpers/server.js';

afterEach(closeServers);

const EHLO_REPLY =
  '250-mx.test greets client.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n';

async function ready(received: Received[] = []): Promise<RawClient> {
  const { port } = await startServer(recordingHandler(received), { maxMessageSize: 1000 });
  const client = await RawClient.connect(port);
  expect(await client.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
  expect(await client.command('EHLO client.test')).toBe(EHLO_REPLY);
  return client;
}

describe('commands', () => {
  it('runs a whole transaction', async () => {
    const received: Received[] = [];
    const c = await ready(received);
    expect(await c.command('MAIL FROM:<a@sender.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.command('RCPT TO:<b@rcpt.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await c.command('RCPT TO:<Postmaster>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await c.command('DATA')).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    expect(await c.command('Subject: hi\r\n\r\n..dotted\r\n.')).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-Z]{12}\r\n$/);
    expect(received).toEqual([
      { mailFrom: 'a@sender.test', rcptTos: ['b@rcpt.test', 'Postmaster'], body: Buffer.from('Subject: hi\r\n\r\n.dotted\r\n') },
    ]);
    expect(await c.command('QUIT')).toBe('221 2.0.0 Bye\r\n');
    await c.closedByServer();
  });

  it('gives the request the time of its MAIL as receivedAt, the same Date however often it is asked for', async () => {
    const seen: { atMail: Date; again: Date; inData: Date; id: string }[] = [];
    class Timed extends RequestHandler {
      #atMail: Date | undefined;
      override prepare(): void {
        this.#atMail = this.request.receivedAt;
      }
      override data(): void {
        const atMail = this.#atMail ?? new Date(0);
        seen.push({ atMail, again: this.request.receivedAt, inData: this.request.receivedAt, id: this.request.id });
      }
    }
    const { port } = await startServer(Timed);
    const c = await RawClient.greeted(port);
    expect(await c.command('EHLO client.test')).toMatch(/^250 /m);
    const before = Date.now();
    expect(await c.command('MAIL FROM:<a@sender.test>')).toBe('250 2.1.0 Sender ok\r\n');
    const afterMail = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await c.command('RCPT TO:<b@rcpt.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await c.command('DATA')).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    const queued = await c.command('Subject: hi\r\n\r\nhello\r\n.');
    c.close();
    expect(seen).toHaveLength(1);
    const [{ atMail, again, inData, id }] = seen as [(typeof seen)[number]];
    expect(queued).toBe(`250 2.0.0 Ok: queued as ${id}\r\n`);
    expect(again).toBe(atMail);
    expect(inData).toBe(atMail);
    expect(atMail).toBeInstanceOf(Date);
    expect(atMail.getTime()).toBeGreaterThanOrEqual(before);
    expect(atMail.getTime()).toBeLessThanOrEqual(afterMail);
  });

  it('answers HELO without extensions and refuses parameters after it', async () => {
    const { port } = await startServer();
    const c = await RawClient.greeted(port);
    expect(await c.command('HELO client.test')).toBe('250 mx.test\r\n');
    expect(await c.command('MAIL FROM:<a@b.test> SIZE=10')).toBe('555 5.5.4 SIZE parameter not recognized\r\n');
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    c.close();
  });

  it('answers NOOP, RSET, VRFY, EXPN, HELP', async () => {
    const c = await ready();
    expect(await c.command('NOOP anything')).toBe('250 2.0.0 Ok\r\n');
    expect(await c.command('RSET')).toBe('250 2.0.0 Ok\r\n');
    expect(await c.command('VRFY someone')).toBe('252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n');
    expect(await c.command('EXPN list')).toBe('502 5.5.1 EXPN not implemented\r\n');
    expect(await c.command('HELP')).toBe(
      '214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n214 2.0.0 End of HELP\r\n',
    );
    c.close();
  });

  it('is case-insensitive in verbs', async () => {
    const c = await ready();
    expect(await c.command('mail from:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.command('rCpT To:<c@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    c.close();
  });
});

describe('command order (503)', () => {
  it('refuses MAIL before EHLO, RCPT before MAIL, DATA before RCPT, nested MAIL', async () => {
    const { port } = await startServer();
    const c = await RawClient.greeted(port);
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('503 5.5.1 Bad sequence of commands: send HELO/EHLO first\r\n');
    expect(await c.command('EHLO c.test')).toMatch(/^250-/);
    expect(await c.command('RCPT TO:<a@b.test>')).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
    expect(await c.command('DATA')).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.command('DATA')).toBe('503 5.5.1 Bad sequence of commands: need RCPT command\r\n');
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('503 5.5.1 Bad sequence of commands: nested MAIL command\r\n');
    c.close();
  });

  it('resets the transaction on EHLO mid-session (RFC 5321 §4.1.4)', async () => {
    const c = await ready();
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.command('RCPT TO:<c@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await c.command('EHLO client.test')).toBe(EHLO_REPLY);
    expect(await c.command('DATA')).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    c.close();
  });

  it('resets the transaction on RSET', async () => {
    const c = await ready();
    await c.command('MAIL FROM:<a@b.test>');
    expect(await c.command('RSET')).toBe('250 2.0.0 Ok\r\n');
    expect(await c.command('RCPT TO:<c@d.test>')).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
    c.close();
  });
});

describe('syntax (500, 501, 555)', () => {
  it('answers unknown commands 500 and bad arguments 501', async () => {
    const c = await ready();
    expect(await c.command('FOO bar')).toBe('500 5.5.2 Command not recognized\r\n');
    expect(await c.command('MAIL FROM:a@b.test')).toBe('501 5.5.4 Syntax: MAIL FROM:<address> [parameters]\r\n');
    expect(await c.command('MAIL FROM:<a@b.test> FOO=BAR')).toBe('555 5.5.4 FOO parameter not recognized\r\n');
    expect(await c.command('MAIL FROM:<>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.command('RCPT TO:<>')).toBe('501 5.1.3 Bad recipient address syntax: null address not allowed here\r\n');
    expect(await c.command('RCPT TO:<a@b.test> NOTIFY=NEVER')).toBe('555 5.5.4 NOTIFY parameter not recognized\r\n');
    c.close();
  });

  it('answers invalid UTF-8, NUL and control characters with 5xx', async () => {
    const c = await ready();
    c.write(Buffer.from([0x4e, 0x4f, 0x4f, 0x50, 0x20, 0xc3, 0x28, 0x0d, 0x0a]));
    expect(await c.reply()).toBe('500 5.5.2 Invalid UTF-8 in command\r\n');
    expect(await c.command('NOOP a\0b')).toBe('501 5.5.2 Control characters are not allowed in commands\r\n');
    expect(await c.command('MAIL FROM:<a\x01b@c.test>')).toBe('501 5.5.2 Control characters are not allowed in commands\r\n');
    expect(await c.command('MAIL FROM:<a\rb@c.test>')).toBe('501 5.5.2 Control characters are not allowed in commands\r\n');
    c.close();
  });

  it('accepts a command ended by bare LF under the default policy', async () => {
    const c = await ready();
    c.write('NOOP\n');
    expect(await c.reply()).toBe('250 2.0.0 Ok\r\n');
    c.close();
  });

  it('refuses a command ended by bare LF under the reject policy', async () => {
    const { port } = await startServer(undefined, { bareLineEndings: 'reject' });
    const c = await RawClient.greeted(port);
    c.write('NOOP\n');
    expect(await c.reply()).toBe('500 5.5.2 Line must end with <CR><LF>\r\n');
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    c.close();
  });

  it('closes on an HTTP request', async () => {
    const { port } = await startServer();
    const c = await RawClient.greeted(port);
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await c.reply()).toBe('421 4.7.0 This is an SMTP server, closing connection\r\n');
    expect(await c.closedByServer()).toBe('');
  });
});

describe('extensions', () => {
  it('SIZE: refuses a declared size over the limit at MAIL (RFC 1870)', async () => {
    const c = await ready();
    expect(await c.command('MAIL FROM:<a@b.test> SIZE=1001')).toBe('552 5.3.4 Message size exceeds fixed maximum message size\r\n');
    expect(await c.command('MAIL FROM:<a@b.test> SIZE=1000')).toBe('250 2.1.0 Sender ok\r\n');
    c.close();
  });

  it('SIZE: drains a body over the limit and refuses it 552, then goes on', async () => {
    const received: Received[] = [];
    const c = await ready(received);
    await c.command('MAIL FROM:<a@b.test>');
    await c.command('RCPT TO:<c@d.test>');
    expect(await c.command('DATA')).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    for (let i = 0; i < 50; i++) c.write(`${'x'.repeat(98)}\r\n`);
    expect(await c.command('.')).toBe('552 5.3.4 Message size exceeds fixed maximum message size\r\n');
    expect(received).toEqual([]);
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    c.close();
  });

  it('8BITMIME: takes BODY=8BITMIME and 8-bit bodies', async () => {
    const received: Received[] = [];
    const c = await ready(received);
    expect(await c.command('MAIL FROM:<a@b.test> BODY=8BITMIME')).toBe('250 2.1.0 Sender ok\r\n');
    await c.command('RCPT TO:<c@d.test>');
    await c.command('DATA');
    expect(await c.command('Grüße\r\n.')).toMatch(/^250 /);
    expect(received[0]?.body.toString('utf8')).toBe('Grüße\r\n');
    c.close();
  });

  it('SMTPUTF8: takes UTF-8 addresses only with the parameter', async () => {
    const received: Received[] = [];
    const c = await ready(received);
    expect(await c.command('MAIL FROM:<jörg@bücher.test>')).toBe('553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n');
    expect(await c.command('MAIL FROM:<jörg@bücher.test> SMTPUTF8')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.command('RCPT TO:<δοκιμή@παράδειγμα.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    await c.command('DATA');
    expect(await c.command('x\r\n.')).toMatch(/^250 /);
    expect(received[0]).toMatchObject({ mailFrom: 'jörg@bücher.test', rcptTos: ['δοκιμή@παράδειγμα.test'] });
    c.close();
  });

  it('PIPELINING: answers a whole pipelined group in order, in one write', async () => {
    const received: Received[] = [];
    const c = await ready(received);
    const writes: string[] = [];
    c.socket.on('data', (d: string) => writes.push(d));
    c.write('MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nRCPT TO:<>\r\nRCPT TO:<e@f.test>\r\nDATA\r\n');
    expect(await c.reply()).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.reply()).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await c.reply()).toBe('501 5.1.3 Bad recipient address syntax: null address not allowed here\r\n');
    expect(await c.reply()).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await c.reply()).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    expect(writes).toHaveLength(1);
    c.write('body\r\n.\r\nRSET\r\nQUIT\r\n');
    expect(await c.reply()).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(await c.reply()).toBe('250 2.0.0 Ok\r\n');
    expect(await c.reply()).toBe('221 2.0.0 Bye\r\n');
    expect(received[0]?.rcptTos).toEqual(['c@d.test', 'e@f.test']);
  });
});

describe('DATA', () => {
  it('takes an empty body', async () => {
    const received: Received[] = [];
    const c = await ready(received);
    await c.command('MAIL FROM:<a@b.test>');
    await c.command('RCPT TO:<c@d.test>');
    await c.command('DATA');
    expect(await c.command('.')).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(received[0]?.body.length).toBe(0);
    c.close();
  });

  it('never ends at <LF>.<LF>: a smuggled second message stays inside the first', async () => {
    const received: Received[] = [];
    const c = await ready(received);
    await c.command('MAIL FROM:<a@b.test>');
    await c.command('RCPT TO:<c@d.test>');
    await c.command('DATA');
    c.write('Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@d.test>\r\nDATA\r\nSubject: forged\r\n\r\n.\r\n');
    expect(await c.reply()).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    expect(received).toHaveLength(1);
    expect(received[0]?.body.toString()).toBe(
      'Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@d.test>\r\nDATA\r\nSubject: forged\r\n\r\n',
    );
    c.close();
  });

  it('refuses a body with bare line ends under the reject policy, after reading it whole', async () => {
    const received: Received[] = [];
    const { port } = await startServer(recordingHandler(received), { bareLineEndings: 'reject' });
    const c = await RawClient.ehlo(port);
    await c.command('MAIL FROM:<a@b.test>');
    await c.command('RCPT TO:<c@d.test>');
    await c.command('DATA');
    expect(await c.command('a\nb\r\n.')).toBe('554 5.6.0 Message contains bare <CR> or <LF>; lines must end with <CR><LF>\r\n');
    expect(received).toEqual([]);
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    c.close();
  });

  it('keeps bare line ends under the keep policy', async () => {
    const received: Received[] = [];
    const { port } = await startServer(recordingHandler(received), { bareLineEndings: 'keep' });
    const c = await RawClient.ehlo(port);
    await c.command('MAIL FROM:<a@b.test>');
    await c.command('RCPT TO:<c@d.test>');
    await c.command('DATA');
    expect(await c.command('a\nb\rc\r\n.')).toMatch(/^250 /);
    expect(received[0]?.body.toString()).toBe('a\nb\rc\r\n');
    c.close();
  });
});
