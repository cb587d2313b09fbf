/** SMTPServer and Application: where they listen, how they close, how settings are checked. */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IsString } from 'class-validator';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Application, Maildir, RequestHandler, SettingsError, SMTPServer, settingsSchema, traceHeaders } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, silent, startServer, until } from '../helpers/server.js';

afterEach(closeServers);

describe('SMTPServer', () => {
  it('listens on IPv6 loopback', async () => {
    const { port } = await startServer(undefined, {}, '::1');
    const c = await RawClient.connect(port, '::1');
    expect(await c.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    c.close();
  });

  it("listens on every interface, dual stack, with address ''", async () => {
    const app = new Application(RequestHandler, { hostname: 'mx.test', logger: silent });
    const server = new SMTPServer(app);
    await server.listen(0, '');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    for (const host of ['127.0.0.1', '::1']) {
      const c = await RawClient.connect(address.port, host);
      expect(await c.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
      c.close();
    }
    await server.close();
  });

  it('listens on a Unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sirocco-'));
    const path = join(dir, 'smtp.sock');
    const server = await new Application(RequestHandler, { hostname: 'mx.test', logger: silent }).listen(path);
    const c = await RawClient.connect(path);
    expect(await c.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await c.command('QUIT')).toBe('221 2.0.0 Bye\r\n');
    await server.close();
    rmSync(dir, { recursive: true });
  });

  it('names a Unix socket client by its socket, in the logs, the session and Received', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sirocco-'));
    const path = join(dir, 'smtp.sock');
    const lines: string[] = [];
    const seen: { local: string; received: string }[] = [];
    class Tracing extends RequestHandler {
      override data(): void {
        seen.push({
          local: this.request.session.localAddress,
          received: traceHeaders(this.request, 'mx.test', new Date(0)).split('\r\n')[1] ?? '',
        });
      }
    }
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    const server = await new Application(Tracing, { hostname: 'mx.test', logger }).listen(path);
    const c = await RawClient.connect(path);
    await c.reply();
    await c.command('HELO client.test');
    await c.command('MAIL FROM:<a@b.test>');
    await c.command('RCPT TO:<c@d.test>');
    await c.command('DATA');
    expect(await c.command('x\r\n.')).toMatch(/^250 /);
    await c.command('QUIT');
    await server.close();
    rmSync(dir, { recursive: true });
    expect(seen).toEqual([{ local: path, received: 'Received: from client.test (unix socket)' }]);
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; client?: string });
    expect(logged.find((l) => l.msg === 'connected')?.client).toBe(`unix:${path}`);
    expect(logged.find((l) => l.msg === 'message accepted')?.client).toBe(`unix:${path}`);
  });

  it("logs a client's reset at debug under its connection's id, closes that connection and goes on serving", async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    const server = await new Application(RequestHandler, { hostname: 'mx.test', logger }).listen(0, '127.0.0.1');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const socket = connect(address.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.resetAndDestroy();
    type Line = { msg: string; conn?: string; err?: { code?: string } };
    const logged = (): Line[] => lines.map((l) => JSON.parse(l) as Line);
    await until(() => logged().some((l) => l.msg === 'closed'));
    const conn = logged().find((l) => l.msg === 'connected')?.conn;
    expect(conn).toMatch(/^[0-9a-z]+\.[0-9a-z]+$/);
    expect(
      logged()
        .filter((l) => l.conn === conn)
        .map((l) => [l.msg, l.err?.code]),
    ).toEqual([
      ['connected', undefined],
      ['S:', undefined],
      ['socket error', 'ECONNRESET'],
      ['closed', undefined],
    ]);
    const c = await RawClient.connect(address.port);
    expect(await c.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    c.close();
    await server.close();
  });

  it('serves sockets made elsewhere (addSockets)', async () => {
    const net = createServer();
    await new Promise<void>((r) => net.listen(0, '127.0.0.1', r));
    const server = new SMTPServer(new Application(RequestHandler, { hostname: 'mx.test', logger: silent }));
    server.addSockets([net]);
    const address = net.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const c = await RawClient.connect(address.port);
    expect(await c.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    c.close();
    await server.close();
  });

  it('rejects a listen() on a port in use with the real cause', async () => {
    const { port } = await startServer();
    const app = new Application(RequestHandler, { logger: silent });
    await expect(app.listen(port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('rejects a bad port with an error naming it', async () => {
    const server = new SMTPServer(new Application(RequestHandler, { logger: silent }));
    await expect(server.listen(70000)).rejects.toThrow('port must be a whole number from 0 to 65535 or a Unix socket path, got 70000');
    expect(() => server.bind(-1)).toThrow(/port must be/);
    await expect(server.start(2)).rejects.toThrow('SMTPServer.start(): call bind() first');
  });

  it('close() lets an open transaction finish, closes idle connections, refuses new ones', async () => {
    const received: string[] = [];
    class Keeping extends RequestHandler {
      override data(): void {
        received.push(this.request.body.toString());
      }
    }
    const { port, server } = await startServer(Keeping, { closeTimeout: 5000 });
    const idle = await RawClient.greeted(port);
    const busy = await RawClient.ehlo(port);
    await busy.command('MAIL FROM:<a@b.test>');
    await busy.command('RCPT TO:<c@d.test>');
    const closing = server.close();
    expect(await idle.closedByServer()).toBe('421 4.3.2 Service shutting down, closing connection\r\n');
    await expect(RawClient.connect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await busy.command('DATA')).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    expect(await busy.command('finished\r\n.')).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(await busy.closedByServer()).toBe('421 4.3.2 Service shutting down, closing connection\r\n');
    await closing;
    expect(received).toEqual(['finished\r\n']);
  });

  it('close() lets BDAT chunks in progress finish, and a streaming handler read them to the end', async () => {
    const received: string[] = [];
    class Streaming extends RequestHandler {
      static override streaming = true;
      override async data(): Promise<void> {
        let text = '';
        for await (const part of this.request.stream) text += (part as Buffer).toString();
        received.push(text);
      }
    }
    const { port, server } = await startServer(Streaming, { closeTimeout: 5000 });
    const busy = await RawClient.ehlo(port);
    await busy.command('MAIL FROM:<a@b.test>');
    await busy.command('RCPT TO:<c@d.test>');
    busy.write('BDAT 6\r\nfirst ');
    expect(await busy.reply()).toBe('250 2.0.0 6 octets received\r\n');
    const closing = server.close();
    busy.write('BDAT 4 LAST\r\nlast');
    expect(await busy.reply()).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(await busy.closedByServer()).toBe('421 4.3.2 Service shutting down, closing connection\r\n');
    await closing;
    expect(received).toEqual(['first last']);
  });

  it('close() drops transactions still open after closeTimeout', async () => {
    const { port, server } = await startServer(undefined, { closeTimeout: 100 });
    const c = await RawClient.ehlo(port);
    await c.command('MAIL FROM:<a@b.test>');
    await server.close();
    await until(() => c.closed);
    expect(server.connections).toBe(0);
  });
});

describe('Application settings', () => {
  it('names every bad field in one error', () => {
    let error: unknown;
    try {
      new Application(RequestHandler, {
        maxMessageSize: -1,
        hostname: 'has space',
        bareLineEndings: 'sometimes' as never,
        idleTimeout: 1.5,
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as SettingsError).problems.map((p) => p.field).sort()).toEqual([
      'bareLineEndings',
      'hostname',
      'idleTimeout',
      'maxMessageSize',
    ]);
    expect((error as Error).message).toBe(
      'Invalid settings: hostname: hostname must not contain white space; idleTimeout: idleTimeout must be an integer number; ' +
        'maxMessageSize: maxMessageSize must not be less than 1; bareLineEndings: bareLineEndings must be one of the following values: normalize, reject, keep',
    );
  });

  it('checks that TLS and AUTH settings fit together', () => {
    expect(
      () =>
        new Application(RequestHandler, {
          logger: silent,
          requireTLS: true,
          implicitTLS: true,
          requireAuth: true,
          tls: { key: 'k' },
        }),
    ).toThrow(
      'Invalid settings: tls: tls needs key and cert (or pfx); requireTLS: requireTLS is implied by implicitTLS; set one of them; requireAuth: requireAuth needs the authenticate setting',
    );
    expect(() => new Application(RequestHandler, { logger: silent, implicitTLS: true })).toThrow(
      'Invalid settings: implicitTLS: implicitTLS needs the tls setting',
    );
    expect(() => new Application(RequestHandler, { logger: silent, authMechanisms: ['PLAIN', 'NTLM'] as never })).toThrow(
      'Invalid settings: authMechanisms: each value in authMechanisms must be one of the following values: PLAIN, LOGIN, CRAM-MD5, XOAUTH2, SCRAM-SHA-256',
    );
    expect(() => new Application(RequestHandler, { logger: silent, authenticate: 'yes' as never })).toThrow(
      'Invalid settings: authenticate: authenticate must be a function',
    );
  });

  it('names the tls setting when its key cannot be used', async () => {
    const app = new Application(RequestHandler, { logger: silent, tls: { key: 'not a key', cert: 'not a cert' } });
    await expect(app.listen(0, '127.0.0.1')).rejects.toThrow(/^tls: /);
  });

  it('refuses something that is not a logger', () => {
    expect(() => new Application(RequestHandler, { logger: 'console' as never })).toThrow(
      'Invalid settings: logger: logger must be a pino logger',
    );
  });

  it('keeps unknown keys for the handlers and applies defaults', () => {
    const app = new Application(RequestHandler, { domain: 'example.com', logger: silent });
    expect(app.settings).toMatchObject({
      domain: 'example.com',
      maxRecipients: 100,
      maxMessageSize: 25 * 1024 * 1024,
      bareLineEndings: 'normalize',
    });
  });

  it("validates a handler's own settings declared with @settingsSchema", () => {
    class InboundSettings {
      @IsString()
      domain!: string;
    }
    @settingsSchema(InboundSettings)
    class Inbound extends RequestHandler<InboundSettings> {}
    expect(() => new Application(Inbound, { logger: silent })).toThrow('Invalid settings: domain: domain must be a string');
    expect(new Application(Inbound, { domain: 'example.com', logger: silent }).settings.domain).toBe('example.com');
  });

  it('refuses a setting name with a typo, naming the setting it was meant to be', () => {
    expect(() => new Application(RequestHandler, { logger: silent, hostnam: 'mx.test' })).toThrow(
      'Invalid settings: hostnam: unknown setting, did you mean hostname?',
    );
    expect(() => new Application(RequestHandler, { logger: silent, MaxMessageSize: 5, idleTimout: 5 })).toThrow(
      'Invalid settings: MaxMessageSize: unknown setting, did you mean maxMessageSize?; idleTimout: unknown setting, did you mean idleTimeout?',
    );
    // A handler without a schema keeps its own keys.
    expect(new Application<{ domain: string }>(RequestHandler, { logger: silent, domain: 'example.com' }).settings.domain).toBe(
      'example.com',
    );
  });

  it('refuses any unknown key for a handler that declares its settings, and names the schema', () => {
    class InboundSettings {
      @IsString()
      domain!: string;
    }
    @settingsSchema(InboundSettings)
    class Inbound extends RequestHandler<InboundSettings> {}
    expect(() => new Application(Inbound, { logger: silent, domain: 'example.com', colour: 'blue' })).toThrow(
      "Invalid settings: colour: unknown setting (neither Sirocco's nor InboundSettings's; a subclass with settings of its own declares them with @settingsSchema)",
    );
    expect(() => new Application(Maildir, { logger: silent, maildri: '/tmp/x' })).toThrow(
      'Invalid settings: maildir: maildir should not be empty, maildir must be a string; maildri: unknown setting, did you mean maildir?',
    );
  });

  it('refuses a handler class that is not a class', () => {
    expect(() => new Application(undefined as never)).toThrow('Application: handlerClass must be a RequestHandler subclass');
  });
});
