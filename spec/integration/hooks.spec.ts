import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler, SMTPError, type SessionInfo } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer } from '../helpers/server.js';

afterEach(closeServers);

describe('onConnect', () => {
  it('greets a client it lets through, and sees the peer before the banner', async () => {
    const seen: SessionInfo[] = [];
    const { port } = await startServer(RequestHandler, { onConnect: (session) => void seen.push(session) });
    const client = await RawClient.connect(port);
    expect(await client.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ remoteAddress: '127.0.0.1', localPort: port, heloName: '', secure: false });
    client.close();
  });

  it('sees where the client connected, on a listener bound to one address and on one bound to every interface', async () => {
    for (const host of ['127.0.0.1', '0.0.0.0']) {
      const seen: SessionInfo[] = [];
      const { port } = await startServer(RequestHandler, { onConnect: (session) => void seen.push(session) }, host);
      const client = await RawClient.connect(port);
      expect(await client.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
      expect(seen[0]).toMatchObject({ localAddress: '127.0.0.1', localPort: port });
      client.close();
    }
  });

  it('answers 554 5.7.1 instead of the banner, 503 to anything but QUIT, and 221 to QUIT (RFC 5321 §3.1)', async () => {
    const { port } = await startServer(RequestHandler, { onConnect: async () => Promise.resolve(false) });
    const client = await RawClient.connect(port);
    expect(await client.reply()).toBe('554 5.7.1 Access denied\r\n');
    expect(await client.command('EHLO c.test')).toBe('503 5.5.1 Bad sequence of commands: connection refused, send QUIT\r\n');
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('503 5.5.1 Bad sequence of commands: connection refused, send QUIT\r\n');
    expect(await client.command('QUIT')).toBe('221 2.0.0 Bye\r\n');
    expect(await client.closedByServer()).toBe('');
  });

  it("sends the hook's own SMTPError; a 421 closes at once", async () => {
    const { port } = await startServer(RequestHandler, {
      onConnect: () => {
        throw new SMTPError(421, [4, 7, 0], 'Too busy, try later');
      },
    });
    const client = await RawClient.connect(port);
    expect(await client.closedByServer()).toBe('421 4.7.0 Too busy, try later\r\n');
  });

  it('answers 421 4.3.0 and closes when the hook fails with another error', async () => {
    const { port } = await startServer(RequestHandler, { onConnect: async () => Promise.reject(new Error('database down')) });
    const client = await RawClient.connect(port);
    expect(await client.closedByServer()).toBe('421 4.3.0 Service not available, closing connection\r\n');
  });

  it('holds commands a client sends before a slow hook decides, then answers them in order', async () => {
    const { port } = await startServer(RequestHandler, { onConnect: () => new Promise<void>((resolve) => setTimeout(resolve, 100)) });
    const client = await RawClient.connect(port);
    client.write('EHLO c.test\r\nNOOP\r\n');
    expect(await client.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await client.reply()).toMatch(/^250-mx.test greets c.test\r\n/);
    expect(await client.reply()).toBe('250 2.0.0 Ok\r\n');
    client.close();
  });
});

describe('onHelo', () => {
  it('refuses a name with 550 5.7.1; the client must greet again before MAIL', async () => {
    const { port } = await startServer(RequestHandler, { onHelo: async (name) => Promise.resolve(name !== 'bad.test') });
    const client = await RawClient.greeted(port);
    expect(await client.command('EHLO bad.test')).toBe('550 5.7.1 HELO/EHLO name refused\r\n');
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('503 5.5.1 Bad sequence of commands: send HELO/EHLO first\r\n');
    expect(await client.command('HELO good.test')).toBe('250 mx.test\r\n');
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    client.close();
  });

  it("sends the hook's SMTPError, and 451 4.3.0 for any other error; the hook sees the session", async () => {
    const sessions: SessionInfo[] = [];
    const { port } = await startServer(RequestHandler, {
      onHelo: (name, session) => {
        sessions.push(session);
        if (name === 'spoof.test') throw new SMTPError(550, [5, 7, 25], 'Reverse DNS does not match');
        if (name === 'bug.test') throw new TypeError('oops');
      },
    });
    const client = await RawClient.greeted(port);
    expect(await client.command('HELO spoof.test')).toBe('550 5.7.25 Reverse DNS does not match\r\n');
    expect(await client.command('HELO bug.test')).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
    expect(await client.command('HELO ok.test')).toBe('250 mx.test\r\n');
    expect(sessions.map((s) => s.remoteAddress)).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1']);
    client.close();
  });
});

describe('strictSyntax', () => {
  it('answers a space before the path with 501, and never ends a command at a bare LF', async () => {
    const { port } = await startServer(RequestHandler, { strictSyntax: true });
    const client = await RawClient.ehlo(port);
    expect(await client.command('MAIL FROM: <a@b.test>')).toBe('501 5.5.4 Syntax: MAIL FROM:<address> [parameters]\r\n');
    expect(await client.command('MAIL FROM:<a@b.test>\nRCPT TO:<x@y.test>')).toBe(
      '501 5.5.2 Control characters are not allowed in commands\r\n',
    );
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO: <x@y.test>')).toBe('501 5.5.4 Syntax: RCPT TO:<address> [parameters]\r\n');
    client.close();
  });

  it('is off by default: the space is taken and a bare LF ends the line', async () => {
    const { port } = await startServer(RequestHandler);
    const client = await RawClient.ehlo(port);
    expect(await client.command('MAIL FROM: <a@b.test>\nRCPT TO: <x@y.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.reply()).toBe('250 2.1.5 Recipient ok\r\n');
    client.close();
  });
});

describe('reply names in the logs', () => {
  it('logs each refusal from the catalogue with its name', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(
          ...chunk
            .toString()
            .split('\n')
            .filter((l) => l !== ''),
        );
        done();
      },
    });
    const { port } = await startServer(RequestHandler, { logger: pino({ level: 'info' }, sink), maxRecipients: 1 });
    const client = await RawClient.ehlo(port);
    await client.command('MAIL FROM:<a@b.test>');
    await client.command('RCPT TO:<x@y.test>');
    expect(await client.command('RCPT TO:<z@y.test>')).toBe('452 4.5.3 Too many recipients\r\n');
    await client.command('QUIT');
    const refusals = lines.map((l) => JSON.parse(l) as { reply?: string; code?: number }).filter((l) => l.reply !== undefined);
    expect(refusals).toEqual([expect.objectContaining({ reply: 'tooManyRecipients', code: 452 })]);
  });
});
