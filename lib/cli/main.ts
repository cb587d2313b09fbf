#!/usr/bin/env node
/**
 * The `sirocco` command: runs a server with a ready handler or your own.
 *
 *   sirocco --listen 127.0.0.1:2525 --handler maildir:./mail
 */
import cluster from 'node:cluster';
import { pino, type Logger } from 'pino';
import prettyStream from 'pino-pretty';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { readFileSync, realpathSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { Application, type AnyApplication } from '../application.js';
import { RequestHandler, type AnyHandlerClass } from '../app/request-handler.js';
import { SettingsError } from '../app/settings-schema.js';
import type { ApplicationSettings, SettingsInput } from '../app/settings.js';
import { Debugging } from '../handlers/debugging.js';
import { Deliver } from '../handlers/deliver.js';
import { catchCommand } from './catch-command.js';
import { queueCommand } from './queue-command.js';
import { describeConfiguration, locate, settingLine, withConfigFile, type Arguments } from './config-file.js';
import { pop3Option, startPop3 } from './pop3-option.js';
import { parseListen, USAGE, UsageError, type ListenTarget } from './usage.js';
import type { UnixSocketOptions } from '../net/listeners.js';
import { RedisLimitStore } from '../net/redis-limit-store.js';
import { couldMakeFolder, writableFolder } from '../storage/folders.js';

export { parseListen, UsageError, type ListenTarget } from './usage.js';
import type { Pop3Server } from '../pop3/pop3-server.js';
import { Maildir } from '../handlers/maildir.js';
import { Relay, type RelaySettings } from '../handlers/relay.js';
import { Sink } from '../handlers/sink.js';
import { SMTPServer } from '../server/smtp-server.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** A whole number option (0 allowed), or `undefined` when not given. */
function wholeNumber(option: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,6}$/.test(value)) throw new UsageError(`${option}: expected a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

function positiveInteger(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw new UsageError(`${name}: expected a positive whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

/**
 * A folder the handler writes: made if missing and writable, or the usage error that says why
 * not. Only checked when `make` is false (`--check-config` changes nothing on disk): the folder,
 * or the nearest folder above it that exists, must be writable.
 */
function checkedFolder(option: string, dir: string, make: boolean): string {
  const path = resolve(dir);
  try {
    if (make) writableFolder(path);
    else couldMakeFolder(path);
  } catch (err) {
    throw new UsageError(`${option}: ${path} cannot be made or written: ${err instanceof Error ? err.message : String(err)}`);
  }
  return path;
}

/** Resolves `--handler` to a class and the settings it needs; with `check`, makes no folder. */
export async function loadHandler(spec: string, check = false): Promise<{ handler: AnyHandlerClass; settings: SettingsInput }> {
  if (spec === 'sink') return { handler: Sink, settings: {} };
  if (spec === 'debugging') return { handler: Debugging, settings: {} };
  if (spec.startsWith('maildir:')) {
    const dir = spec.slice('maildir:'.length);
    if (dir === '') throw new UsageError('--handler maildir:DIR needs a directory');
    return { handler: Maildir, settings: { maildir: checkedFolder('--handler maildir:DIR', dir, !check) } };
  }
  if (spec.startsWith('deliver:')) {
    const dir = spec.slice('deliver:'.length);
    if (dir === '') throw new UsageError('--handler deliver:QUEUE_DIR needs a directory');
    return { handler: Deliver, settings: { queueDir: checkedFolder('--handler deliver:QUEUE_DIR', dir, !check) } };
  }
  if (spec.startsWith('relay:')) {
    const match = /^relay:([^:]+)(?::(\d{1,5}))?$/.exec(spec);
    if (match === null) throw new UsageError(`--handler relay:HOST[:PORT], got ${JSON.stringify(spec)}`);
    const relay: RelaySettings = { relayHost: match[1] ?? '', relayPort: Number(match[2] ?? 25) };
    return { handler: Relay, settings: { ...relay } };
  }
  const colon = spec.lastIndexOf(':');
  if (colon <= 0 || colon === spec.length - 1) {
    throw new UsageError(
      `--handler: expected sink, debugging, maildir:DIR, relay:HOST[:PORT], deliver:QUEUE_DIR or FILE:CLASS, got ${JSON.stringify(spec)}`,
    );
  }
  const file = spec.slice(0, colon);
  const name = spec.slice(colon + 1);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(isAbsolute(file) ? file : resolve(file)).href)) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`--handler: cannot load ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const handler = module[name];
  if (typeof handler !== 'function' || !(handler.prototype instanceof RequestHandler)) {
    throw new UsageError(`--handler: ${file} exports no RequestHandler subclass named ${name}`);
  }
  return { handler: handler as AnyHandlerClass, settings: {} };
}

/** What the command line asks for. */
export interface Plan {
  readonly help: boolean;
  readonly listen: ListenTarget;
  readonly handler: string;
  readonly settings: SettingsInput;
  /** `--workers`: serve from this many processes (0: one per CPU); `undefined`: one process. */
  readonly workers: number | undefined;
  /** `--pop3-listen` and `--pop3-users`. */
  readonly pop3: { readonly port: number; readonly host: string; readonly users: ReadonlyMap<string, string> } | undefined;
  /** `--socket-mode` and `--socket-group`, for a Unix socket `--listen`. */
  readonly socket: UnixSocketOptions;
  /** `--tls-key` and `--tls-cert`, read again on SIGHUP by a single process. */
  readonly tlsFiles: { readonly key: string; readonly cert: string } | undefined;
}

/** What the command closes on its way out. */
interface Closable {
  close?(): Promise<void>;
}

/** The command's options, for node:util's parseArgs. */
const OPTIONS = {
  listen: { type: 'string' },
  handler: { type: 'string' },
  hostname: { type: 'string' },
  'max-message-size': { type: 'string' },
  'max-recipients': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-cert': { type: 'string' },
  'implicit-tls': { type: 'boolean' },
  lmtp: { type: 'boolean' },
  'proxy-from': { type: 'string', multiple: true },
  'metrics-listen': { type: 'string' },
  'limit-store': { type: 'string' },
  'pop3-listen': { type: 'string' },
  'pop3-users': { type: 'string' },
  'socket-mode': { type: 'string' },
  'socket-group': { type: 'string' },
  workers: { type: 'string' },
  'drain-timeout': { type: 'string' },
  'log-level': { type: 'string' },
  set: { type: 'string', multiple: true },
  help: { type: 'boolean' },
} as const satisfies Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

/** Parses the arguments; throws {@link UsageError} for anything wrong. */
export function parseCommandLine(args: readonly string[]): Plan {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: OPTIONS,
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err));
  }
  const settings = setOptions(values.set ?? []);
  if (values.hostname !== undefined) settings.hostname = values.hostname;
  const size = positiveInteger('--max-message-size', values['max-message-size']);
  if (size !== undefined) settings.maxMessageSize = size;
  const rcpts = positiveInteger('--max-recipients', values['max-recipients']);
  if (rcpts !== undefined) settings.maxRecipients = rcpts;
  const idle = positiveInteger('--idle-timeout', values['idle-timeout']);
  if (idle !== undefined) settings.idleTimeout = idle * 1000;
  const key = values['tls-key'];
  const cert = values['tls-cert'];
  if ((key === undefined) !== (cert === undefined)) throw new UsageError('--tls-key and --tls-cert go together');
  if (key !== undefined && cert !== undefined) {
    try {
      settings.tls = { key: readFileSync(key), cert: readFileSync(cert) };
    } catch (err) {
      throw new UsageError(`--tls-key/--tls-cert: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (values['implicit-tls'] === true) {
    if (settings.tls === undefined) throw new UsageError('--implicit-tls needs --tls-key and --tls-cert');
    settings.implicitTLS = true;
  }
  if (values.lmtp === true) settings.lmtp = true;
  if (values['proxy-from'] !== undefined) settings.proxyFrom = values['proxy-from'];
  if (values['metrics-listen'] !== undefined) settings.metricsListen = values['metrics-listen'];
  const drain = wholeNumber('--drain-timeout', values['drain-timeout']);
  if (drain !== undefined) settings.closeTimeout = drain * 1000;
  const level = values['log-level'] ?? process.env.SIROCCO_LOG_LEVEL ?? 'info';
  if (!LEVELS.includes(level)) throw new UsageError(`--log-level: expected one of ${LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  settings.logger = pino(
    { level },
    process.stdout.isTTY ? prettyStream({ colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' }) : undefined,
  );
  const workers = wholeNumber('--workers', values.workers);
  const mode = values['socket-mode'];
  if (mode !== undefined && !/^0?[0-7]{3}$/.test(mode))
    throw new UsageError(`--socket-mode: expected an octal mode such as 660, got ${JSON.stringify(mode)}`);
  const pop3 = pop3Option(values['pop3-listen'], values['pop3-users'], values.handler, workers);
  // Last: the store connects at once, so nothing after it may refuse the command line.
  const store = values['limit-store'];
  if (store !== undefined) {
    try {
      settings.limitStore = RedisLimitStore.fromUrl(store, settings.logger as Logger);
    } catch (err) {
      throw new UsageError(`--limit-store: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return {
    socket: { mode: mode === undefined ? undefined : parseInt(mode, 8), group: values['socket-group'] },
    pop3,
    workers,
    tlsFiles: key === undefined || cert === undefined ? undefined : { key, cert },
    help: values.help === true,
    listen: parseListen(values.listen ?? '127.0.0.1:2525'),
    handler: values.handler ?? 'debugging',
    settings: settings,
  };
}

/**
 * Listens where the plan says: alone, or as Tornado's bind + start. Resolves false in a cluster
 * worker, which this script runs again and which serves from then on.
 */
async function serve(server: SMTPServer, plan: Plan): Promise<boolean> {
  if (plan.workers !== undefined) {
    if ('path' in plan.listen) server.bind(plan.listen.path);
    else server.bind(plan.listen.port, plan.listen.host);
    await server.start(plan.workers);
    return !cluster.isWorker;
  }
  if ('path' in plan.listen) await server.listen(plan.listen.path, undefined, plan.socket);
  else await server.listen(plan.listen.port, plan.listen.host);
  return true;
}

/** A listening address as the command prints it. */
function whereOf(address: ReturnType<SMTPServer['address']>): string {
  if (typeof address === 'string') return address;
  if (address === null) return '?';
  return `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
}

/** The POP3 server's options: the plan's, and the Maildir, TLS and name of the SMTP application. */
function pop3Options(plan: NonNullable<Plan['pop3']>, app: AnyApplication): Parameters<typeof startPop3>[0] {
  const settings = app.settings as ApplicationSettings & { maildir?: string; maildirPerRecipient?: boolean };
  return {
    ...plan,
    maildir: settings.maildir ?? '',
    perUser: settings.maildirPerRecipient === true,
    tls: settings.tls as { key: Buffer; cert: Buffer } | undefined,
    allowInsecureAuth: settings.allowInsecureAuth,
    hostname: settings.hostname,
    logger: app.logger,
    limits: {
      maxConnectionsPerIp: settings.maxConnectionsPerIp,
      maxConnectionsPerNet: settings.maxConnectionsPerNet,
      connectionRatePerIp: settings.connectionRatePerIp,
      authFailuresPerIp: settings.authFailuresPerIp,
      limitWindow: settings.limitWindow,
      ipv6PrefixLength: settings.ipv6PrefixLength,
      limitExempt: settings.limitExempt,
      limitStore: settings.limitStore,
    },
  };
}

/** SIGHUP to a single process: the renewed key and certificate, read again (a cluster restarts its workers instead). */
function reloadTlsOnHangup(server: SMTPServer, files: { key: string; cert: string }, out: Writable, err: Writable): void {
  process.on('SIGHUP', () => {
    try {
      server.reloadTLS({ key: readFileSync(files.key), cert: readFileSync(files.cert) });
      out.write('sirocco: TLS key and certificate reloaded\n');
    } catch (e) {
      err.write(`sirocco: TLS reload failed, the old key and certificate stay: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  });
}

/** The settings of `--set KEY=VALUE` options: VALUE as JSON, or else as the plain string. */
function setOptions(pairs: readonly string[]): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set: expected KEY=VALUE, got ${JSON.stringify(pair)}`);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // Not JSON: the plain string.
    }
    settings[pair.slice(0, eq)] = value;
  }
  return settings;
}

/** Runs the command; resolves to the exit status once the server has closed (or at once on error). */
export async function main(args: readonly string[], out = process.stdout, err = process.stderr): Promise<number> {
  if (args[0] === 'catch') {
    return catchCommand(
      args.slice(1),
      (t) => out.write(t),
      (t) => err.write(t),
    );
  }
  if (args[0] === 'queue') {
    return queueCommand(
      args.slice(1),
      (t) => out.write(t),
      (t) => err.write(t),
    );
  }
  let server: SMTPServer | undefined;
  let app: AnyApplication;
  let pop3: Pop3Server | undefined;
  let given: Arguments | undefined;
  /** A shared limit store the command made (`--limit-store`): closed with the server, or at once when it does not start. */
  let store: Closable | undefined;
  try {
    given = withConfigFile(args, OPTIONS);
    const plan = parseCommandLine(given.args);
    store = plan.settings.limitStore as Closable | undefined;
    if (plan.help) {
      out.write(USAGE);
      await store?.close?.();
      return 0;
    }
    const loaded = await loadHandler(plan.handler, given.check);
    app = new Application(loaded.handler, { ...loaded.settings, ...plan.settings });
    if (given.check) {
      out.write(describeConfiguration(plan, app.settings as object));
      await store?.close?.();
      return 0;
    }
    server = new SMTPServer(app);
    if (!(await serve(server, plan))) return await new Promise<number>(() => undefined);
    out.write(`sirocco: serving ${plan.handler} on ${whereOf(server.address())}\n`);
    if (plan.pop3 !== undefined) {
      const started = await startPop3(pop3Options(plan.pop3, app));
      pop3 = started.server;
      out.write(`sirocco: serving POP3 on ${started.where}\n`);
    }
    const files = plan.tlsFiles;
    if (files !== undefined && plan.workers === undefined) reloadTlsOnHangup(server, files, out, err);
  } catch (e) {
    // Nothing stays listening after a failed start: a supervisor sees the exit, not half a server.
    await Promise.allSettled([server?.close(), pop3?.close(), store?.close?.()]);
    if (e instanceof UsageError) {
      err.write(`sirocco: ${locate(e.message, given?.file, given?.given ?? (() => true))} (see --help)\n`);
      return 2;
    }
    if (e instanceof SettingsError) {
      const file = given?.file;
      const lines =
        file === undefined ? [e.message] : e.problems.map((p) => `${settingLine(p.field, file)}${p.field}: ${p.reasons.join(', ')}`);
      err.write(`${lines.map((line) => `sirocco: ${line}`).join('\n')} (see --help)\n`);
      return 2;
    }
    err.write(`sirocco: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  const running = server;
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      out.write('sirocco: closing\n');
      void Promise.all([running.close(), pop3?.close()])
        .then(() => store?.close?.())
        .then(() => done());
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}

/** Whether this module is the program being run (also through the symlink npm makes for `bin`). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await main(process.argv.slice(2));
}
