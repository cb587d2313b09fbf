/** The Controller users start and stop in their own test suites. */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Application, RequestHandler, SettingsError } from '../../lib/index.js';
import { Controller, ControllerTimeoutError, UnixSocketController } from '../../lib/entry/testing.js';
import { makeCertificates } from '../helpers/certs.js';
import { RawClient } from '../helpers/raw-client.js';
import { silent } from '../helpers/server.js';

const started: (Controller | UnixSocketController)[] = [];
afterEach(async () => {
  delete process.env.SIROCCO_CONTROLLER_TIMEOUT;
  for (const c of started.splice(0)) await c.stop().catch(() => undefined);
});

describe('Controller', () => {
  it('starts on a free port, greets, and refuses connections once stopped', async () => {
    const controller = new Controller(RequestHandler, { settings: { hostname: 'ctl.test', logger: silent } });
    started.push(controller);
    await controller.start();
    expect(controller.hostname).toBe('127.0.0.1');
    expect(controller.port).toBeGreaterThan(0);
    const c = await RawClient.connect(controller.port);
    expect(await c.reply()).toBe('220 ctl.test ESMTP Sirocco\r\n');
    expect(await c.command('EHLO x.test')).toContain('250-SMTPUTF8\r\n');
    c.close();
    await controller.stop();
    await expect(RawClient.connect(controller.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('is quiet by default in a test run; logLevel or SIROCCO_LOG_LEVEL turn its log on', async () => {
    const saved = process.env.SIROCCO_LOG_LEVEL;
    delete process.env.SIROCCO_LOG_LEVEL;
    try {
      const quiet = new Controller(RequestHandler);
      const chatty = new Controller(RequestHandler, { logLevel: 'debug' });
      started.push(quiet, chatty);
      await Promise.all([quiet.start(), chatty.start()]);
      expect([quiet.server?.application.logger.level, chatty.server?.application.logger.level]).toEqual(['silent', 'debug']);
      process.env.SIROCCO_LOG_LEVEL = 'warn';
      const fromEnv = new Controller(RequestHandler);
      started.push(fromEnv);
      await fromEnv.start();
      expect(fromEnv.server?.application.logger.level).toBe('warn');
    } finally {
      if (saved === undefined) delete process.env.SIROCCO_LOG_LEVEL;
      else process.env.SIROCCO_LOG_LEVEL = saved;
    }
  });

  it('serves an Application as it is', async () => {
    const app = new Application(RequestHandler, { hostname: 'given.test', logger: silent });
    const controller = new Controller(app);
    started.push(controller);
    await controller.start();
    expect(controller.application).toBe(app);
    const c = await RawClient.connect(controller.port);
    expect(await c.reply()).toBe('220 given.test ESMTP Sirocco\r\n');
    c.close();
  });

  it('rejects start() with the real cause when the port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const address = taken.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const controller = new Controller(RequestHandler, { port, settings: { logger: silent } });
    await expect(controller.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await new Promise((r) => taken.close(r));
  });

  it('rejects start() with the SettingsError when the application cannot be built', async () => {
    const controller = new Controller(RequestHandler, { settings: { maxRecipients: 0, logger: silent } });
    await expect(controller.start()).rejects.toBeInstanceOf(SettingsError);
  });

  it('rejects start() with a timeout when the server does not greet in time, and cleans up', async () => {
    const certs = makeCertificates();
    try {
      // An SMTPS server says nothing to a plaintext client: the greeting never comes.
      const controller = new Controller(RequestHandler, {
        readyTimeout: 200,
        settings: { tls: { key: certs.key, cert: certs.cert }, implicitTLS: true, logger: silent },
      });
      const error = await controller.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ControllerTimeoutError);
      expect((error as Error).message).toBe(
        'Controller: the server did not greet within 200 ms (readyTimeout; SIROCCO_CONTROLLER_TIMEOUT overrides it)',
      );
      await expect(RawClient.connect(controller.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      certs.cleanup();
    }
  });

  it('takes its ready timeout from SIROCCO_CONTROLLER_TIMEOUT, and names a bad value', async () => {
    process.env.SIROCCO_CONTROLLER_TIMEOUT = '150';
    const certs = makeCertificates();
    try {
      const controller = new Controller(RequestHandler, {
        readyTimeout: 60_000,
        settings: { tls: { key: certs.key, cert: certs.cert }, implicitTLS: true, logger: silent },
      });
      await expect(controller.start()).rejects.toThrow('within 150 ms');
    } finally {
      certs.cleanup();
    }
    process.env.SIROCCO_CONTROLLER_TIMEOUT = 'soon';
    await expect(new Controller(RequestHandler).start()).rejects.toThrow(
      'SIROCCO_CONTROLLER_TIMEOUT must be a positive number of milliseconds, got soon',
    );
  });

  it('refuses stop() before a successful start()', async () => {
    await expect(new Controller(RequestHandler).stop()).rejects.toThrow(
      'Controller.stop(): the controller was not started (or start() failed)',
    );
  });
});

describe('UnixSocketController', () => {
  it('serves on a Unix socket and removes it when stopped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sirocco-ctl-'));
    const path = join(dir, 'smtp.sock');
    const controller = new UnixSocketController(RequestHandler, { unixSocket: path, settings: { hostname: 'unix.test', logger: silent } });
    await controller.start();
    const c = await RawClient.connect(path);
    expect(await c.reply()).toBe('220 unix.test ESMTP Sirocco\r\n');
    c.close();
    await controller.stop();
    expect(existsSync(path)).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });

  it('names a missing socket path', () => {
    expect(() => new UnixSocketController(RequestHandler, { unixSocket: '' })).toThrow(
      'UnixSocketController: unixSocket must be a socket path',
    );
  });
});
