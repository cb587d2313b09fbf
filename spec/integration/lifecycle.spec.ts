/** The RequestHandler lifecycle over real sockets, and regressions for Bonzo's defects. */
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler, SMTPError, type HandlerClass } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer, until } from '../helpers/server.js';

afterEach(closeServers);

describe('lifecycle', () => {
  it('calls prepare → rcpt → data → onFinish in order, once each', async () => {
    const calls: string[] = [];
    class Tracing extends RequestHandler {
      override prepare(): void {
        calls.push(`prepare ${this.request.mailFrom}`);
      }
      override rcpt(address: string): void {
        calls.push(`rcpt ${address}`);
      }
      override data(): void {
        calls.push(`data ${this.request.rcptTos.join(',')} ${this.request.body.toString().trim()}`);
      }
      override onFinish(): void {
        calls.push('onFinish');
      }
      override onConnectionClose(): void {
        calls.push('onConnectionClose');
      }
    }
    const { port } = await startServer(Tracing);
    const c = await RawClient.inData(port);
    expect(await c.command('hello\r\n.')).toMatch(/^250 /);
    expect(await c.command('QUIT')).toBe('221 2.0.0 Bye\r\n');
    await c.closedByServer();
    expect(calls).toEqual(['prepare a@b.test', 'rcpt c@d.test', 'data c@d.test hello', 'onFinish']);
  });

  it('refuses a sender in prepare() and a recipient in rcpt()', async () => {
    const finished: string[] = [];
    class Picky extends RequestHandler {
      override prepare(): void {
        if (this.request.mailFrom.endsWith('@spam.test')) throw new SMTPError(550, [5, 7, 1], 'sender refused');
      }
      override async rcpt(address: string): Promise<void> {
        await Promise.resolve();
        if (!address.endsWith('@example.com')) throw new SMTPError(550, [5, 7, 1], 'not relaying to that domain');
      }
      override onFinish(): void {
        finished.push(this.request.mailFrom);
      }
    }
    const { port } = await startServer(Picky);
    const c = await RawClient.ehlo(port);
    expect(await c.command('MAIL FROM:<x@spam.test>')).toBe('550 5.7.1 sender refused\r\n');
    expect(finished).toEqual(['x@spam.test']);
    expect(await c.command('RCPT TO:<a@example.com>')).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
    expect(await c.command('MAIL FROM:<ok@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.command('RCPT TO:<a@elsewhere.test>')).toBe('550 5.7.1 not relaying to that domain\r\n');
    expect(await c.command('DATA')).toBe('503 5.5.1 Bad sequence of commands: need RCPT command\r\n');
    expect(await c.command('RCPT TO:<a@example.com>')).toBe('250 2.1.5 Recipient ok\r\n');
    c.close();
  });

  it('lets data() choose the 250 text with finish(), and refuses a second finish()', async () => {
    let second: unknown;
    class Finishing extends RequestHandler {
      override data(): void {
        this.finish('stored in the archive');
        try {
          this.finish();
        } catch (err) {
          second = err;
        }
      }
    }
    const { port } = await startServer(Finishing);
    const c = await RawClient.inData(port);
    expect(await c.command('x\r\n.')).toBe('250 2.0.0 stored in the archive\r\n');
    expect(second).toBeInstanceOf(Error);
    expect((second as Error).message).toBe('finish() was already called for this message');
    c.close();
  });

  it('refuses finish() outside data()', async () => {
    class Early extends RequestHandler {
      override prepare(): void {
        this.finish();
      }
    }
    const { port } = await startServer(Early);
    const c = await RawClient.ehlo(port);
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
    c.close();
  });

  it('answers 451 for any other error, sync or async, in any hook', async () => {
    class Broken extends RequestHandler {
      override rcpt(address: string): void {
        if (address.startsWith('sync')) throw new Error('boom');
      }
      override async data(): Promise<void> {
        await Promise.resolve();
        throw new TypeError('async boom');
      }
    }
    const { port } = await startServer(Broken);
    const c = await RawClient.ehlo(port);
    await c.command('MAIL FROM:<a@b.test>');
    expect(await c.command('RCPT TO:<sync@d.test>')).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
    expect(await c.command('RCPT TO:<ok@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    await c.command('DATA');
    expect(await c.command('x\r\n.')).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
    c.close();
  });

  it('answers 451 when the handler constructor throws', async () => {
    class BadCtor extends RequestHandler {
      constructor(...args: ConstructorParameters<HandlerClass>) {
        super(...args);
        throw new Error('no database');
      }
    }
    const { port } = await startServer(BadCtor);
    const c = await RawClient.ehlo(port);
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
    c.close();
  });

  it('runs onFinish once after RSET and after a new EHLO', async () => {
    let finished = 0;
    class Counting extends RequestHandler {
      override onFinish(): void {
        finished++;
      }
    }
    const { port } = await startServer(Counting);
    const c = await RawClient.ehlo(port);
    await c.command('MAIL FROM:<a@b.test>');
    await c.command('RSET');
    expect(finished).toBe(1);
    await c.command('MAIL FROM:<a@b.test>');
    await c.command('EHLO c.test');
    expect(finished).toBe(2);
    c.close();
  });

  it('exposes settings as an alias of the application settings, unknown keys kept', async () => {
    let seen: unknown;
    class Reading extends RequestHandler<{ domain: string }> {
      override prepare(): void {
        seen = [this.settings === this.application.settings, this.settings.domain, this.settings.maxRecipients];
      }
    }
    const { port } = await startServer(Reading, { domain: 'example.com' });
    const c = await RawClient.ehlo(port);
    await c.command('MAIL FROM:<a@b.test>');
    expect(seen).toEqual([true, 'example.com', 100]);
    c.close();
  });

  it('gives the session, the envelope and lazily parsed headers', async () => {
    let seen: unknown;
    class Looking extends RequestHandler {
      override data(): void {
        const { session, envelope, headers } = this.request;
        seen = {
          peer: session.remoteAddress,
          local: session.localPort > 0,
          helo: session.heloName,
          esmtp: session.esmtp,
          secure: session.secure,
          params: envelope.mailParams,
          body: envelope.bodyType,
          size: envelope.declaredSize,
          subject: headers.get('SUBJECT'),
          received: headers.getAll('received'),
        };
      }
    }
    const { port } = await startServer(Looking);
    const c = await RawClient.greeted(port);
    await c.command('EHLO client.test');
    await c.command('MAIL FROM:<a@b.test> SIZE=100 BODY=8BITMIME');
    await c.command('RCPT TO:<c@d.test>');
    await c.command('DATA');
    expect(await c.command('Received: one\r\nSubject: a\r\n long subject\r\nReceived: two\r\n\r\nbody\r\n.')).toMatch(/^250 /);
    expect(seen).toEqual({
      peer: '127.0.0.1',
      local: true,
      helo: 'client.test',
      esmtp: true,
      secure: false,
      params: { SIZE: '100', BODY: '8BITMIME' },
      body: '8BITMIME',
      size: 100,
      subject: 'a long subject',
      received: ['one', 'two'],
    });
    c.close();
  });
});

describe("regressions for Bonzo's defects", () => {
  it('after a failed message, the next command is a command, not message data', async () => {
    class Failing extends RequestHandler {
      override data(): void {
        throw new SMTPError(554, [5, 6, 0], 'content refused');
      }
    }
    const { port } = await startServer(Failing);
    const c = await RawClient.inData(port);
    expect(await c.command('x\r\n.')).toBe('554 5.6.0 content refused\r\n');
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.command('RSET')).toBe('250 2.0.0 Ok\r\n');
    c.close();
  });

  it('an exception in an async data() still sends a reply', async () => {
    class AsyncFailing extends RequestHandler {
      override async data(): Promise<void> {
        await new Promise((r) => setTimeout(r, 10));
        throw new Error('disk full');
      }
    }
    const { port } = await startServer(AsyncFailing);
    const c = await RawClient.inData(port);
    expect(await c.command('x\r\n.')).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
    c.close();
  });

  it('a dot right after 354 (empty body) is answered', async () => {
    const { port } = await startServer();
    const c = await RawClient.inData(port);
    expect(await c.command('.')).toMatch(/^250 2\.0\.0 Ok: queued as /);
    c.close();
  });

  it('lines ending in bare LF are answered, commands and data alike', async () => {
    const { port } = await startServer();
    const c = await RawClient.greeted(port);
    c.write('EHLO c.test\n');
    expect(await c.reply()).toMatch(/^250-mx.test/);
    c.write('MAIL FROM:<a@b.test>\nRCPT TO:<c@d.test>\nDATA\n');
    expect(await c.reply()).toBe('250 2.1.0 Sender ok\r\n');
    expect(await c.reply()).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await c.reply()).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    c.write('body\n.\n');
    c.write('\r\n.\r\n');
    expect(await c.reply()).toMatch(/^250 /);
    c.close();
  });

  it('ESMTP parameters are not kept inside the address', async () => {
    let from: string | undefined;
    class Capturing extends RequestHandler {
      override prepare(): void {
        from = this.request.mailFrom;
      }
    }
    const { port } = await startServer(Capturing);
    const c = await RawClient.ehlo(port);
    expect(await c.command('MAIL FROM:<a@b> SIZE=10')).toBe('250 2.1.0 Sender ok\r\n');
    expect(from).toBe('a@b');
    c.close();
  });

  it('<> is never taken as a literal recipient', async () => {
    const { port } = await startServer();
    const c = await RawClient.ehlo(port);
    await c.command('MAIL FROM:<>');
    expect(await c.command('RCPT TO:<>')).toBe('501 5.1.3 Bad recipient address syntax: null address not allowed here\r\n');
    c.close();
  });

  it('onFinish still runs after the connection closed mid-handler', async () => {
    const events: string[] = [];
    let release: () => void = () => undefined;
    class Slow extends RequestHandler {
      override async data(): Promise<void> {
        events.push('data started');
        await new Promise<void>((r) => (release = r));
        events.push('data done');
      }
      override onConnectionClose(): void {
        events.push('onConnectionClose');
      }
      override onFinish(): void {
        events.push('onFinish');
      }
    }
    const { port } = await startServer(Slow);
    const c = await RawClient.inData(port);
    c.write('x\r\n.\r\n');
    await until(() => events.includes('data started'));
    c.close();
    await until(() => events.includes('onConnectionClose'));
    release();
    await until(() => events.includes('onFinish'));
    expect(events).toEqual(['data started', 'onConnectionClose', 'data done', 'onFinish']);
  });

  it('onConnectionClose then onFinish when the client leaves mid-transaction', async () => {
    const events: string[] = [];
    class Watching extends RequestHandler {
      override onConnectionClose(): void {
        events.push('onConnectionClose');
      }
      override onFinish(): void {
        events.push('onFinish');
      }
    }
    const { port } = await startServer(Watching);
    const c = await RawClient.inData(port);
    c.write('half a message');
    c.close();
    await until(() => events.length === 2);
    expect(events).toEqual(['onConnectionClose', 'onFinish']);
  });
});

describe('handlerTimeout', () => {
  it('answers 451 when a hook never settles, and the session goes on', async () => {
    const events: string[] = [];
    class Stuck extends RequestHandler {
      override async rcpt(address: string): Promise<void> {
        if (address.startsWith('stuck')) await new Promise(() => undefined);
      }
      override async data(): Promise<void> {
        events.push('data started');
        await new Promise(() => undefined);
      }
      override onFinish(): void {
        events.push('onFinish');
      }
    }
    const { port } = await startServer(Stuck, { handlerTimeout: 100 });
    const c = await RawClient.ehlo(port);
    await c.command('MAIL FROM:<a@b.test>');
    expect(await c.command('RCPT TO:<stuck@d.test>')).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
    expect(await c.command('RCPT TO:<fine@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    await c.command('DATA');
    expect(await c.command('x\r\n.')).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    // onFinish waits for the stuck hooks, which never settle.
    expect(events).toEqual(['data started']);
    c.close();
  });

  it('lets a slow hook finish when it settles in time, and calls onFinish after it', async () => {
    const events: string[] = [];
    class Slow extends RequestHandler {
      override async data(): Promise<void> {
        await new Promise((r) => setTimeout(r, 50));
        events.push('data done');
      }
      override onFinish(): void {
        events.push('onFinish');
      }
    }
    const { port } = await startServer(Slow, { handlerTimeout: 5000 });
    const c = await RawClient.inData(port);
    expect(await c.command('x\r\n.')).toMatch(/^250 /);
    expect(events).toEqual(['data done', 'onFinish']);
    c.close();
  });

  it('runs onFinish once a timed-out hook settles after all', async () => {
    const events: string[] = [];
    let release: () => void = () => undefined;
    class Late extends RequestHandler {
      override async prepare(): Promise<void> {
        await new Promise<void>((r) => (release = r));
        events.push('prepare done');
      }
      override onFinish(): void {
        events.push('onFinish');
      }
    }
    const { port } = await startServer(Late, { handlerTimeout: 100 });
    const c = await RawClient.ehlo(port);
    expect(await c.command('MAIL FROM:<a@b.test>')).toBe('451 4.3.0 Requested action aborted: local error in processing\r\n');
    expect(await c.command('RCPT TO:<c@d.test>')).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
    expect(events).toEqual([]);
    release();
    await until(() => events.length === 2);
    expect(events).toEqual(['prepare done', 'onFinish']);
    c.close();
  });
});
