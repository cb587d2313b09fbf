/**
 * A server a user's own test suite starts and stops around its tests, like aiosmtpd's Controller.
 */
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { Application, type AnyApplication } from '../application.js';
import type { AnyHandlerClass } from '../app/request-handler.js';
import type { SettingsInput } from '../app/settings.js';
import { SMTPServer } from '../server/smtp-server.js';
import { catchingHandler, catchingSettings } from './catching.js';
import { Faults } from './faults.js';
import { Inbox, type InboxOptions } from './inbox.js';
import { InboxHttpServer, type InboxHttpOptions } from './inbox-http.js';

/**
 * Options of {@link Controller}.
 *
 * @example
 * ```ts
 * const options: ControllerOptions = { port: 0, readyTimeout: 2000, settings: { domain: 'example.com' } };
 * const controller = new Controller(Inbound, options);
 * ```
 */
export interface ControllerOptions {
  /** The address to listen on. Default `127.0.0.1`. */
  readonly hostname?: string;
  /** The port; 0 (the default) picks a free one, reported by {@link Controller.port}. */
  readonly port?: number;
  /**
   * Milliseconds `start()` waits for the server to greet. Default 1000, or the environment variable
   * `SIROCCO_CONTROLLER_TIMEOUT` (milliseconds) when set.
   */
  readonly readyTimeout?: number;
  /** Application settings, when the Controller is given a handler class. SMTPUTF8 is on. */
  readonly settings?: SettingsInput;
  /**
   * Keep every accepted message in {@link Controller.inbox}: `true`, its caps, or an `Inbox` of
   * your own. Needs a handler class (not an Application) that does not stream.
   */
  readonly inbox?: boolean | InboxOptions | Inbox;
  /**
   * The server's log level, when `settings` gives no logger. Default `silent` (a test run stays
   * readable), or the environment variable `SIROCCO_LOG_LEVEL` when set.
   */
  readonly logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
}

/**
 * Options of {@link UnixSocketController}.
 *
 * @example
 * ```ts
 * new UnixSocketController(Inbound, { unixSocket: '/tmp/smtp.sock', readyTimeout: 2000 } satisfies UnixSocketControllerOptions);
 * ```
 */
export interface UnixSocketControllerOptions extends Omit<ControllerOptions, 'hostname' | 'port'> {
  /** The Unix socket's path. */
  readonly unixSocket: string;
}

/**
 * Thrown by `start()` when the server did not greet within `readyTimeout`.
 *
 * @example
 * ```ts
 * try { await controller.start(); }
 * catch (err) { if (err instanceof ControllerTimeoutError) console.error('server too slow to greet'); }
 * ```
 */
export class ControllerTimeoutError extends Error {
  constructor(ms: number) {
    super(`Controller: the server did not greet within ${ms} ms (readyTimeout; SIROCCO_CONTROLLER_TIMEOUT overrides it)`);
    this.name = 'ControllerTimeoutError';
  }
}

function readyTimeoutOf(options: { readonly readyTimeout?: number }): number {
  const fromEnv = process.env.SIROCCO_CONTROLLER_TIMEOUT;
  if (fromEnv !== undefined && fromEnv !== '') {
    const ms = Number(fromEnv);
    if (!Number.isFinite(ms) || ms <= 0)
      throw new RangeError(`SIROCCO_CONTROLLER_TIMEOUT must be a positive number of milliseconds, got ${fromEnv}`);
    return ms;
  }
  const ms = options.readyTimeout ?? 1000;
  if (!Number.isFinite(ms) || ms <= 0)
    throw new RangeError(`Controller: readyTimeout must be a positive number of milliseconds, got ${String(ms)}`);
  return ms;
}

/** Connects, reads the greeting and says QUIT; rejects unless the greeting is a 220. */
function handshake(target: { port: number; host: string } | { path: string }, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket: Socket = 'path' in target ? connect(target.path) : connect(target.port, target.host);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ControllerTimeoutError(ms));
    }, ms);
    socket.setEncoding('utf8');
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (!text.includes('\r\n')) return;
      clearTimeout(timer);
      socket.end('QUIT\r\n');
      if (text.startsWith('220')) resolve();
      else reject(new Error(`Controller: the server greeted with ${JSON.stringify(text.trim())}`));
    });
  });
}

/**
 * Starts a real Sirocco server for a test and stops it after. `start()` resolves only once a real
 * client connection got the 220 greeting; after `stop()`, new connections are refused.
 *
 * @example
 * ```ts
 * const controller = new Controller(MyHandler, { settings: { domain: 'example.com' } });
 * beforeAll(() => controller.start());
 * afterAll(() => controller.stop());
 * it('receives', async () => {
 *   await nodemailer.createTransport({ host: controller.hostname, port: controller.port }).sendMail(msg);
 * });
 * ```
 */
export class Controller {
  /** The application served. */
  readonly application: AnyApplication | undefined;
  readonly #source: AnyApplication | AnyHandlerClass;
  readonly #options: ControllerOptions;
  readonly #kit: TestKit;
  #server: SMTPServer | undefined;
  #http: InboxHttpServer | undefined;
  #port = 0;

  /** @param appOrHandler an {@link Application}, or a handler class to build one with `options.settings`. */
  constructor(appOrHandler: AnyApplication | AnyHandlerClass, options: ControllerOptions = {}) {
    this.#source = appOrHandler;
    this.#options = options;
    this.#kit = new TestKit(appOrHandler, options);
    this.application = appOrHandler instanceof Application ? appOrHandler : undefined;
  }

  /** Every message accepted, when the Controller was made with the `inbox` option. */
  get inbox(): Inbox {
    return this.#kit.inbox;
  }

  /** The failures to inject at each step (none until you add some). Needs a handler class. */
  get faults(): Faults {
    return this.#kit.faults;
  }

  /** The address listened on. */
  get hostname(): string {
    return this.#options.hostname ?? '127.0.0.1';
  }

  /** The port listened on; the real one once started with port 0. */
  get port(): number {
    return this.#port;
  }

  /** The running server, once started. */
  get server(): SMTPServer | undefined {
    return this.#server;
  }

  /**
   * Starts the server and waits for its greeting. Rejects with the real cause when listening fails
   * (for example `EADDRINUSE`), with a `SettingsError` for bad settings, and with a
   * {@link ControllerTimeoutError} when no greeting came within `readyTimeout`.
   */
  async start(): Promise<void> {
    if (this.#server !== undefined) throw new Error('Controller.start(): already started');
    this.#server = await this.#kit.starting(() =>
      startAndGreet(this.#kit.application(this.#source, this.#options.settings, this.#options.logLevel), this.#options, async (server) => {
        await server.listen(this.#options.port ?? 0, this.hostname);
        const address = server.address();
        this.#port = typeof address === 'object' && address !== null ? address.port : 0;
        return { port: this.#port, host: this.hostname };
      }),
    );
  }

  /**
   * Serves the inbox's web view and JSON API ({@link InboxHttpServer}, on loopback and a free
   * port unless `options` say otherwise), with this controller's faults; {@link stop} closes it.
   * Open `http://127.0.0.1:<port>/` to look at a test's mail while it runs.
   */
  async serveInbox(options: InboxHttpOptions = {}): Promise<InboxHttpServer> {
    if (this.#http !== undefined) throw new Error('Controller.serveInbox(): already serving');
    const http = new InboxHttpServer(this.inbox, this.faults);
    await http.listen(options);
    this.#http = http;
    return http;
  }

  /** Stops the server (and the inbox's HTTP server, if serving); once it resolves, new connections are refused. */
  async stop(): Promise<void> {
    const server = this.#server;
    const http = this.#http;
    this.#server = undefined;
    this.#http = undefined;
    await http?.close();
    await stopStarted('Controller', server);
  }
}

/**
 * A {@link Controller} on a Unix socket.
 *
 * @example
 * ```ts
 * const controller = new UnixSocketController(MyHandler, { unixSocket: '/tmp/test-smtp.sock' });
 * await controller.start();
 * ```
 */
export class UnixSocketController {
  readonly #source: AnyApplication | AnyHandlerClass;
  readonly #options: UnixSocketControllerOptions;
  readonly #kit: TestKit;
  #server: SMTPServer | undefined;

  constructor(appOrHandler: AnyApplication | AnyHandlerClass, options: UnixSocketControllerOptions) {
    if (typeof options.unixSocket !== 'string' || options.unixSocket === '') {
      throw new TypeError('UnixSocketController: unixSocket must be a socket path');
    }
    this.#source = appOrHandler;
    this.#options = options;
    this.#kit = new TestKit(appOrHandler, options);
  }

  /** Like {@link Controller.inbox}. */
  get inbox(): Inbox {
    return this.#kit.inbox;
  }

  /** Like {@link Controller.faults}. */
  get faults(): Faults {
    return this.#kit.faults;
  }

  /** The socket path. */
  get unixSocket(): string {
    return this.#options.unixSocket;
  }

  /** Like {@link Controller.start}, on the socket path. */
  async start(): Promise<void> {
    if (this.#server !== undefined) throw new Error('UnixSocketController.start(): already started');
    this.#server = await this.#kit.starting(() =>
      startAndGreet(this.#kit.application(this.#source, this.#options.settings, this.#options.logLevel), this.#options, async (server) => {
        await server.listen(this.#options.unixSocket);
        return { path: this.#options.unixSocket };
      }),
    );
  }

  /** Like {@link Controller.stop}; the socket file is removed. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await stopStarted('UnixSocketController', server);
  }
}

/** Builds the server, lets `listen` start it, and resolves once a client got the greeting. */
async function startAndGreet(
  application: AnyApplication,
  options: Pick<ControllerOptions, 'readyTimeout'>,
  listen: (server: SMTPServer) => Promise<{ port: number; host: string } | { path: string }>,
): Promise<SMTPServer> {
  const ms = readyTimeoutOf(options);
  const server = new SMTPServer(application);
  const target = await listen(server);
  try {
    await handshake(target, ms);
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}

async function stopStarted(kind: string, server: SMTPServer | undefined): Promise<void> {
  if (server === undefined) throw new Error(`${kind}.stop(): the controller was not started (or start() failed)`);
  await server.close();
}

/** A controller's inbox and faults, and the application with them around the user's handler. */
class TestKit {
  readonly #inbox: Inbox | undefined;
  readonly #faults: Faults | undefined;

  constructor(source: AnyApplication | AnyHandlerClass, options: Pick<ControllerOptions, 'inbox'>) {
    const wanted = options.inbox;
    if (source instanceof Application) {
      if (wanted !== undefined && wanted !== false) throw new TypeError('Controller: the inbox needs a handler class, not an Application');
      return;
    }
    this.#faults = new Faults();
    if (wanted === undefined || wanted === false) return;
    this.#inbox = wanted instanceof Inbox ? wanted : new Inbox(wanted === true ? {} : wanted);
  }

  get inbox(): Inbox {
    if (this.#inbox === undefined) throw new TypeError('Controller: no inbox; make the Controller with the inbox option (inbox: true)');
    return this.#inbox;
  }

  get faults(): Faults {
    if (this.#faults === undefined) throw new TypeError('Controller: faults need a handler class, not an Application');
    return this.#faults;
  }

  /** Runs the start, faults held back: the Controller's own check that the server greets is no test's connection. */
  async starting<T>(start: () => Promise<T>): Promise<T> {
    if (this.#faults !== undefined) this.#faults.paused = true;
    try {
      return await start();
    } finally {
      if (this.#faults !== undefined) this.#faults.paused = false;
    }
  }

  /** The application served: the user's, or one built around the handler class with the faults and the inbox. */
  application(source: AnyApplication | AnyHandlerClass, settings: SettingsInput | undefined, logLevel?: string): AnyApplication {
    if (source instanceof Application) {
      if (settings !== undefined) throw new TypeError('Controller: settings go to the Application you passed, not to the Controller');
      return source;
    }
    const faults = this.faults;
    // Tests want a fast stop and international addresses.
    return new Application(catchingHandler(source, faults, this.#inbox), {
      smtputf8: true,
      closeTimeout: 1000,
      logger: pino({ level: logLevel ?? process.env.SIROCCO_LOG_LEVEL ?? 'silent' }),
      ...catchingSettings(settings, faults),
    });
  }
}
