/** Starts a real server on a loopback port for one test, and tracks it for closing. */
import { createServer } from 'node:net';
import { pino } from 'pino';
import { Application, RequestHandler, SMTPServer, type HandlerClass, type SettingsInput } from '../../lib/index.js';

export const silent = pino({ level: 'silent' });

export interface Running<S extends object> {
  readonly app: Application<S>;
  readonly server: SMTPServer;
  readonly port: number;
}

const open = new Set<SMTPServer>();

export async function startServer<S extends object = Record<string, unknown>>(
  handler: HandlerClass<S> = RequestHandler,
  settings: SettingsInput & Partial<S> = {},
  host = '127.0.0.1',
  port = 0,
): Promise<Running<S>> {
  const app = new Application<S>(handler, { hostname: 'mx.test', logger: silent, closeTimeout: 1000, ...settings });
  const server = new SMTPServer(app);
  await server.listen(port, host);
  open.add(server);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { app, server, port: address.port };
}

/** Closes every server started by {@link startServer}; call in afterEach. */
export async function closeServers(): Promise<void> {
  const servers = [...open];
  open.clear();
  await Promise.all(servers.map((s) => s.close()));
}

/** A handler that records what it saw, for assertions. */
export interface Received {
  mailFrom: string;
  rcptTos: string[];
  body: Buffer;
}

export function recordingHandler(received: Received[]): HandlerClass {
  return class Recording extends RequestHandler {
    override data(): void {
      received.push({ mailFrom: this.request.mailFrom, rcptTos: [...this.request.rcptTos], body: this.request.body });
    }
  };
}

/** Waits until `predicate` holds, checking every 10 ms for at most `ms`. */
export async function until(predicate: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A free loopback port, for a tool the test starts that needs its own (HAProxy, a metrics endpoint). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address !== null ? address.port : 0;
}
