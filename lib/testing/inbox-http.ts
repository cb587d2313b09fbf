/**
 * The inbox over HTTP: a JSON API for test suites in any language (list and search, one message,
 * its source and attachments, delete, and `wait`, the in-process `waitFor` as one request).
 * Loopback by default, optional basic auth, and no state change from another site.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CaughtMessage } from './caught.js';
import type { Faults } from './faults.js';
import type { Inbox } from './inbox.js';
import { matchesQuery } from './inbox-query.js';
import { INBOX_OPENAPI } from './inbox-openapi.js';
import { describeSearch, faultFrom, HttpProblem, integer, jsonBody, parseSearch, SEARCH } from './inbox-requests.js';
import { release, type ReleaseTarget } from './inbox-release.js';
import { full, summary } from './inbox-views.js';
import { sendHtml, WebAssets } from './inbox-web.js';

/**
 * Where and how {@link InboxHttpServer} listens.
 *
 * @example
 * ```ts
 * const options: InboxHttpOptions = { port: 8025, auth: { user: 'team', password: process.env.CATCHER_PASSWORD ?? '' } };
 * ```
 */
export interface InboxHttpOptions {
  /** The TCP port; `0` (the default) picks a free one. */
  readonly port?: number;
  /** The address to listen on; `127.0.0.1` by default. Anything else is a deliberate choice. */
  readonly host?: string;
  /**
   * Where `POST /messages/{id}/release` sends: set, a request may not name another server; unset,
   * each request names its own (`host`, `port`).
   */
  readonly releaseTo?: ReleaseTarget;
  /** Basic auth every request must carry, for a shared host. */
  readonly auth?: {
    /** The user name (no `:`). */
    readonly user: string;
    /** The password. */
    readonly password: string;
  };
}

/** How many event streams may be open at once; past it, 503. */
const MAX_STREAMS = 64;
/** A comment line on each event stream this often, so proxies keep it open. */
const HEARTBEAT_MS = 15_000;
/** The longest `wait` a request may ask for, in ms. */
const MAX_WAIT = 300_000;
/** How many `wait` requests may be open at once; past it, 503. */
const MAX_WAITERS = 256;
/** The largest page of a list. */
const MAX_LIMIT = 1000;
const API = '/api/v1';

/**
 * Serves an {@link Inbox} as a JSON API. Routes (all under `/api/v1`): `GET /messages` (newest
 * first; `to`, `from`, `subject`, `text`, `tag`, `header=Name: value`, `since`, `until`,
 * `limit`, `offset`), `GET /messages/{id}`, `GET /messages/{id}/raw`,
 * `GET /messages/{id}/attachments/{n}`, `DELETE /messages/{id}`, `DELETE /messages`, and
 * `GET /wait` (the same search and `timeout` in ms: the first match, already here or arriving;
 * else `408` with what did arrive), `GET /events` (Server-Sent Events: `message`, `deleted`,
 * `cleared`), given the Controller's {@link Faults}, `GET`, `POST` and `DELETE /faults`, and its
 * own OpenAPI 3.1 description at `GET /openapi.json`.
 *
 * @example
 * ```ts
 * const controller = new Controller(RequestHandler, { inbox: true });
 * await controller.start();
 * const http = new InboxHttpServer(controller.inbox, controller.faults);
 * await http.listen({ port: 8025 });
 * // curl 'http://127.0.0.1:8025/api/v1/wait?to=bob@example.com&timeout=5000'
 * // curl -X POST -H 'Content-Type: application/json' -d '{"at":"rcpt","recipient":"x@example.com","reply":452}' \
 * //   http://127.0.0.1:8025/api/v1/faults
 * await http.close();
 * ```
 */
export class InboxHttpServer {
  readonly #inbox: Inbox;
  readonly #faults: Faults | undefined;
  readonly #server: Server;
  #auth: Buffer | undefined;
  #releaseTo: InboxHttpOptions['releaseTo'];
  #waiters = 0;
  #streams = 0;
  readonly #web = new WebAssets();

  /** `faults`: the {@link Faults} the API may list, add to and clear (a Controller's `faults`). */
  constructor(inbox: Inbox, faults?: Faults) {
    this.#inbox = inbox;
    this.#faults = faults;
    this.#server = createServer((req, res) => this.#handle(req, res));
    // A request's headers within 10 s, its whole exchange (a wait included) within the longest wait.
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = MAX_WAIT + 10_000;
  }

  /** Starts listening; resolves once ready. */
  async listen(options: InboxHttpOptions = {}): Promise<void> {
    const port = options.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new RangeError(`InboxHttpServer: port must be 0 to 65535, got ${String(port)}`);
    this.#releaseTo = options.releaseTo;
    if (options.auth !== undefined) {
      if (options.auth.user.includes(':')) throw new RangeError('InboxHttpServer: auth.user must not contain ":"');
      this.#auth = Buffer.from(`Basic ${Buffer.from(`${options.auth.user}:${options.auth.password}`).toString('base64')}`);
    }
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, options.host ?? '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  /** Where it listens. */
  address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  /** Stops listening and ends open requests (waits included). */
  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    const failed = (err: unknown): void => {
      if (err instanceof HttpProblem)
        json(res, err.status, { error: err.message, ...(err.parameter === undefined ? {} : { parameter: err.parameter }) });
      else json(res, 500, { error: 'internal error' });
    };
    try {
      this.#check(req, res);
      const url = new URL(req.url ?? '/', 'http://inbox.invalid');
      // HEAD is answered as GET is, without the body (Node's response leaves it out).
      this.#route(req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET'), url, req, res)?.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  /** Basic auth when set, and no state change asked by another site's page. */
  #check(req: IncomingMessage, res: ServerResponse): void {
    const expected = this.#auth;
    if (expected !== undefined) {
      const given = Buffer.from(req.headers.authorization ?? '');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        res.setHeader('WWW-Authenticate', 'Basic realm="sirocco inbox", charset="UTF-8"');
        throw new HttpProblem(401, 'authentication required');
      }
    }
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') return;
    const site = req.headers['sec-fetch-site'];
    const origin = req.headers.origin;
    let crossOrigin = site === 'cross-site' || site === 'same-site';
    if (origin !== undefined) {
      try {
        crossOrigin ||= new URL(origin).host !== req.headers.host;
      } catch {
        crossOrigin = true;
      }
    }
    if (crossOrigin) throw new HttpProblem(403, 'cross-site request refused');
  }

  #route(method: string, url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> | undefined {
    const path = url.pathname;
    if (!path.startsWith(`${API}/`)) {
      if (this.#web.serve(method, path, res)) return undefined;
      throw new HttpProblem(404, `no route ${path}`);
    }
    const parts = path
      .slice(API.length + 1)
      .split('/')
      .map((part) => {
        try {
          return decodeURIComponent(part);
        } catch {
          throw new HttpProblem(400, `bad percent-encoding in ${path}`);
        }
      });
    const [first, id, third, index, ...rest] = parts;
    if (first === 'faults' && id === undefined) return this.#faultsRoute(method, req, res);
    if (first === 'openapi.json' && id === undefined) {
      if (method !== 'GET') throw notAllowed(method, 'GET', res);
      json(res, 200, INBOX_OPENAPI);
      return undefined;
    }
    if (first === 'info' && id === undefined) {
      if (method !== 'GET') throw notAllowed(method, 'GET', res);
      json(res, 200, { messages: this.#inbox.messages.length, releaseTo: this.#releaseTo ?? null, faults: this.#faults !== undefined });
    } else if (first === 'events' && id === undefined) {
      if (method !== 'GET') throw notAllowed(method, 'GET', res);
      if (req.method === 'HEAD') res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8' }).end();
      else this.#events(res);
    } else if (first === 'wait' && id === undefined) {
      if (method !== 'GET') throw notAllowed(method, 'GET', res);
      this.#wait(url.searchParams, res);
    } else if (first === 'messages' && id === undefined) {
      if (method === 'GET') this.#list(url.searchParams, res);
      else if (method === 'DELETE') {
        this.#inbox.clear();
        res.writeHead(204).end();
      } else throw notAllowed(method, 'GET, DELETE', res);
    } else if (first === 'messages' && id !== undefined && third === 'release' && index === undefined) {
      if (method !== 'POST') throw notAllowed(method, 'POST', res);
      return this.#release(this.#find(id), req, res);
    } else if (first === 'messages' && id !== undefined && id !== '' && rest.length === 0) {
      this.#messageRoute(method, this.#find(id), third, index, url.searchParams, res);
    } else {
      throw new HttpProblem(404, `no route ${path}`);
    }
    return undefined;
  }

  /** `/messages/{id}`, its `/raw`, its `/html` and its `/attachments/{n}`. */
  #messageRoute(
    method: string,
    message: CaughtMessage,
    part: string | undefined,
    index: string | undefined,
    params: URLSearchParams,
    res: ServerResponse,
  ): void {
    if (part === undefined) {
      if (method === 'GET') json(res, 200, full(message));
      else if (method === 'DELETE') {
        this.#inbox.remove([message.id]);
        res.writeHead(204).end();
      } else throw notAllowed(method, 'GET, DELETE', res);
      return;
    }
    if (method !== 'GET') throw notAllowed(method, 'GET', res);
    if (part === 'raw' && index === undefined) {
      res.writeHead(200, { 'Content-Type': 'message/rfc822', 'Content-Length': message.raw.length }).end(message.raw);
      return;
    }
    if (part === 'html' && index === undefined) return sendHtml(message, params, res);
    if (part === 'attachments' && index !== undefined) {
      const n = /^\d{1,6}$/.test(index) ? Number(index) : -1;
      const attachment = message.attachments[n];
      if (attachment === undefined) throw new HttpProblem(404, `message ${message.id} has no attachment ${index}`);
      const name = (attachment.filename ?? `attachment-${n}`).replace(/[^\w.\- ]/g, '_');
      res
        .writeHead(200, {
          'Content-Type': 'application/octet-stream',
          'Content-Disposition': `attachment; filename="${name}"`,
          'Content-Length': attachment.content.length,
        })
        .end(attachment.content);
      return;
    }
    throw new HttpProblem(404, `no route for message ${message.id}: ${part}${index === undefined ? '' : `/${index}`}`);
  }

  async #release(message: CaughtMessage, req: IncomingMessage, res: ServerResponse): Promise<void> {
    json(res, 200, await release(message, await jsonBody(req), this.#releaseTo));
  }

  /** `GET` lists the faults, `POST` adds one (JSON; with `seed` and `rate`, a random one), `DELETE` clears them. */
  async #faultsRoute(method: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const faults = this.#faults;
    if (faults === undefined) throw new HttpProblem(404, 'this server has no faults to inject');
    if (method === 'DELETE') {
      faults.clear();
      res.writeHead(204).end();
      return;
    }
    if (method === 'POST') {
      const fault = faultFrom(await jsonBody(req));
      try {
        if ('seed' in fault) faults.random(fault);
        else faults.add(fault);
      } catch (err) {
        throw new HttpProblem(400, err instanceof Error ? err.message : String(err));
      }
      json(res, 201, { faults: faults.list(), pending: faults.pending, injected: faults.injected });
      return;
    }
    if (method !== 'GET') throw notAllowed(method, 'GET, POST, DELETE', res);
    json(res, 200, { faults: faults.list(), pending: faults.pending, injected: faults.injected });
  }

  /** Server-Sent Events: `message` (a summary) for each arrival, `deleted` (the ids) when messages leave, `cleared` when none is left. */
  #events(res: ServerResponse): void {
    if (this.#streams >= MAX_STREAMS) throw new HttpProblem(503, `too many event streams open (${MAX_STREAMS})`);
    this.#streams++;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8' });
    res.write(': sirocco inbox events\n\n');
    const send = (event: string, data: unknown): void => {
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const stopMessages = this.#inbox.onMessage((m) => send('message', summary(m)));
    const stopRemoved = this.#inbox.onRemoved((ids) => {
      send('deleted', { ids });
      if (this.#inbox.messages.length === 0) send('cleared', {});
    });
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    res.once('close', () => {
      this.#streams--;
      stopMessages();
      stopRemoved();
      clearInterval(heartbeat);
    });
  }

  #find(id: string): CaughtMessage {
    const message = this.#inbox.messages.find((m) => m.id === id);
    if (message === undefined) throw new HttpProblem(404, `no message ${id}`);
    return message;
  }

  #list(params: URLSearchParams, res: ServerResponse): void {
    const search = parseSearch(params, ['limit', 'offset']);
    const limit = integer(params, 'limit', 1, MAX_LIMIT) ?? 50;
    const offset = integer(params, 'offset', 0, Number.MAX_SAFE_INTEGER) ?? 0;
    const found = this.#inbox.find(search).reverse();
    json(res, 200, {
      total: found.length,
      offset,
      count: Math.min(limit, Math.max(0, found.length - offset)),
      messages: found.slice(offset, offset + limit).map(summary),
    });
  }

  #wait(params: URLSearchParams, res: ServerResponse): void {
    const search = parseSearch(params, ['timeout']);
    const timeout = integer(params, 'timeout', 0, MAX_WAIT) ?? 5000;
    const found = this.#inbox.find(search)[0];
    if (found !== undefined) return json(res, 200, full(found));
    if (this.#waiters >= MAX_WAITERS) throw new HttpProblem(503, `too many waits open (${MAX_WAITERS})`);
    this.#waiters++;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.#waiters--;
      stop();
      clearTimeout(timer);
    };
    const stop = this.#inbox.onMessage((m) => {
      if (!matchesQuery(m, search)) return;
      finish();
      json(res, 200, full(m));
    });
    const timer = setTimeout(() => {
      finish();
      json(res, 408, {
        error: `no message${SEARCH.some((n) => params.has(n)) ? ` matching ${describeSearch(params)}` : ''} within ${timeout} ms`,
        arrived: this.#inbox.messages.reverse().map(summary),
      });
    }, timeout);
    // A client that gives up stops the wait (the response's close, not the socket's: a kept-alive
    // socket carries many requests, and would gather a listener per wait).
    res.once('close', finish);
  }
}

function notAllowed(method: string, allowed: string, res: ServerResponse): HttpProblem {
  res.setHeader('Allow', allowed);
  return new HttpProblem(405, `${method} not allowed here`);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) }).end(text);
}
