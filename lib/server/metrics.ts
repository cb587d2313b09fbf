/**
 * Prometheus metrics (prom-client), when the `metricsListen` setting asks for them. The server
 * counts into {@link ServerMetrics} as it works; a scrape of `/metrics` reads the registry. Under
 * `start(n)` each worker keeps its own registry and the primary serves the sum of all of them
 * (prom-client's `AggregatorRegistry`, over node:cluster's messages).
 *
 * Names follow postfix_exporter and maddy where they fit (`smtpd_connects_total`,
 * `smtpd_messages_total` …), each prefixed `sirocco_`; every metric is documented in the README.
 * prom-client is loaded only when metrics are on.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type * as Prom from 'prom-client';
import { COMMAND_ORDER } from '../protocol/command-order.js';
import type { Decision } from '../protocol/decision.js';
import type { LineEvent } from '../protocol/line-splitter.js';
import type { Reply } from '../protocol/reply.js';
import type { LimitStore } from '../app/limit-store.js';

/** The verbs failed commands are counted by; anything else counts as `unknown`. */
const KNOWN_VERBS = new Set(Object.keys(COMMAND_ORDER));

type PromClient = typeof Prom;

/** Reply names that mean a limit deferred the client, for `sirocco_smtpd_limit_deferrals_total`. */
const LIMITS = new Set(['tooManyConnections', 'tooManyRecipients', 'insufficientStorage', 'tooManyErrors', 'tooManyAuthFailures']);

/** Handler hooks timed by `sirocco_handler_duration_seconds`. */
export type TimedHook = 'prepare' | 'rcpt' | 'data';

/** One sample of a metric family: its labels and value (prom-client's metric JSON). */
interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/**
 * A metric family counted in plain numbers and read by the registry only at a scrape: the hot
 * path pays an increment, not prom-client's label hashing. It is what prom-client's Registry
 * asks of a metric (`name`, `get()`), so one Registry, and the cluster's aggregation, take it.
 */
class Family {
  readonly name: string;
  readonly #help: string;
  readonly #type: 'counter' | 'gauge';
  readonly samples = new Map<string | number, Sample>();

  constructor(name: string, help: string, type: 'counter' | 'gauge' = 'counter') {
    this.name = `sirocco_${name}`;
    this.#help = help;
    this.#type = type;
  }

  /** The sample for `key`, made with `labels` the first time. */
  sample(key: string | number, labels: () => Record<string, string>): Sample {
    let sample = this.samples.get(key);
    if (sample === undefined) {
      sample = { labels: labels(), value: 0 };
      this.samples.set(key, sample);
    }
    return sample;
  }

  get(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: 'sum' }> {
    return Promise.resolve({ name: this.name, help: this.#help, type: this.#type, values: [...this.samples.values()], aggregator: 'sum' });
  }

  reset(): void {
    for (const sample of this.samples.values()) sample.value = 0;
  }
}

const BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30];

/** A histogram by hook, counted in arrays of bucket counts. */
class HookHistogram {
  readonly name = 'sirocco_handler_duration_seconds';
  readonly #counts = new Map<string, { buckets: number[]; sum: number; count: number }>();

  observe(hook: string, seconds: number): void {
    let h = this.#counts.get(hook);
    if (h === undefined) {
      h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#counts.set(hook, h);
    }
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= (BUCKETS[i] ?? 0)) h.buckets[i] = (h.buckets[i] ?? 0) + 1;
    h.sum += seconds;
    h.count++;
  }

  get(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: 'sum' }> {
    const values: Sample[] = [];
    for (const [hook, h] of this.#counts) {
      BUCKETS.forEach((le, i) => values.push({ labels: { le, hook }, value: h.buckets[i] ?? 0, metricName: `${this.name}_bucket` }));
      values.push({ labels: { le: '+Inf', hook }, value: h.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { hook }, value: h.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { hook }, value: h.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({
      name: this.name,
      help: "Time the handler's hooks took, by hook.",
      type: 'histogram',
      values,
      aggregator: 'sum',
    });
  }

  reset(): void {
    this.#counts.clear();
  }
}

export class ServerMetrics {
  readonly registry: Prom.Registry;
  readonly #connections = new Family('smtpd_connections', 'Open connections.', 'gauge');
  readonly #connects = new Family('smtpd_connects_total', 'Connections accepted.');
  readonly #refused = new Family('smtpd_connections_refused_total', 'Connections turned away, by reason.');
  readonly #transactions = new Family('smtpd_transactions_total', 'Mail transactions by outcome: started, completed, aborted.');
  readonly #messages = new Family('smtpd_messages_total', 'Messages accepted (250 after the data).');
  readonly #bytes = new Family('smtpd_message_bytes_total', 'Bytes of the messages accepted.');
  readonly #replies = new Family('smtpd_replies_total', 'Replies sent, by code and enhanced code.');
  readonly #failedCommands = new Family('smtpd_failed_commands_total', 'Commands answered 4xx or 5xx, by command.');
  readonly #tls = new Family('smtpd_tls_sessions_total', 'TLS sessions started, by protocol.');
  readonly #auth = new Family('smtpd_auth_total', 'AUTH exchanges by mechanism and result (success, failure).');
  readonly #deferrals = new Family('smtpd_limit_deferrals_total', 'Clients deferred or refused by a limit, by the reply sent.');
  readonly #handler = new HookHistogram();
  readonly #open: Sample;
  readonly #connected: Sample;
  readonly #accepted: Sample;
  readonly #acceptedBytes: Sample;
  readonly #outcomes: Record<'started' | 'completed' | 'aborted', Sample>;

  constructor(prom: PromClient) {
    const own = new prom.Registry();
    const families = [
      this.#connections,
      this.#connects,
      this.#refused,
      this.#transactions,
      this.#messages,
      this.#bytes,
      this.#replies,
      this.#failedCommands,
      this.#tls,
      this.#auth,
      this.#deferrals,
    ];
    for (const family of [...families, this.#handler]) own.registerMetric(family as unknown as Prom.Metric);
    // The process and Node metrics every Node exporter has (CPU, memory, heap, event-loop lag,
    // GC), under their usual names; a cluster primary sums its workers' as prom-client decides
    // for each (sums, or the first worker's for versions and start times).
    this.registry = prom.Registry.merge([own, processMetrics(prom)]);
    const none = (): Record<string, string> => ({});
    this.#open = this.#connections.sample('', none);
    this.#connected = this.#connects.sample('', none);
    this.#accepted = this.#messages.sample('', none);
    this.#acceptedBytes = this.#bytes.sample('', none);
    const outcome = (o: string): Sample => this.#transactions.sample(o, () => ({ outcome: o }));
    this.#outcomes = { started: outcome('started'), completed: outcome('completed'), aborted: outcome('aborted') };
  }

  /**
   * `sirocco_limit_store_fallbacks_total`, read from a shared store at each scrape: the
   * decisions it left to this process (or refused) because Redis did not answer in time.
   */
  limitStore(store: LimitStore | undefined): void {
    if (store?.fallbacks === undefined) return;
    const name = 'sirocco_limit_store_fallbacks_total';
    const help = 'Per-client limit decisions the shared store did not make in time (made by this process, or refused when failing closed).';
    const metric = {
      name,
      get: () => Promise.resolve({ name, help, type: 'counter', values: [{ labels: {}, value: store.fallbacks ?? 0 }], aggregator: 'sum' }),
      reset: () => undefined,
    };
    this.registry.registerMetric(metric as unknown as Prom.Metric);
  }

  connected(): void {
    this.#open.value++;
    this.#connected.value++;
  }

  disconnected(): void {
    this.#open.value--;
  }

  /** A connection turned away: `limit`, `shutdown`, `proxy`, `early_talker`, `on_connect`. */
  refused(reason: string): void {
    this.#refused.sample(reason, () => ({ reason })).value++;
  }

  transaction(outcome: 'started' | 'completed' | 'aborted'): void {
    this.#outcomes[outcome].value++;
  }

  accepted(bytes: number): void {
    this.#accepted.value++;
    this.#acceptedBytes.value += bytes;
  }

  reply(reply: Reply): void {
    const e = reply.enhanced;
    const key = reply.code * 1e9 + (e === undefined ? 0 : e[0] * 1e6 + e[1] * 1e3 + e[2]);
    const known = this.#replies.samples.get(key);
    if (known !== undefined) known.value++;
    else this.#replies.sample(key, () => ({ code: String(reply.code), enhanced: e === undefined ? '' : e.join('.') })).value++;
    if (reply.code >= 400 && reply.name !== undefined && LIMITS.has(reply.name)) {
      const limit = reply.name;
      this.#deferrals.sample(limit, () => ({ limit })).value++;
    }
  }

  /** `sirocco_smtpd_failed_commands_total`: a command the session refused, counted by its verb. */
  commandDecided(decision: Decision, event: LineEvent): void {
    const reply = decision.kind === 'close' ? decision.replies[0] : 'reply' in decision ? decision.reply : undefined;
    if (reply === undefined || reply.code < 400) return;
    const word = event.kind === 'tooLong' ? 'too_long' : (event.line.toString('latin1', 0, 10).split(' ')[0]?.toUpperCase() ?? '');
    const command = word === 'too_long' || KNOWN_VERBS.has(word) ? word : 'unknown';
    this.#failedCommands.sample(command, () => ({ command })).value++;
  }

  tls(protocol: string): void {
    this.#tls.sample(protocol, () => ({ protocol })).value++;
  }

  auth(mechanism: string, ok: boolean): void {
    const result = ok ? 'success' : 'failure';
    this.#auth.sample(`${mechanism} ${result}`, () => ({ mechanism, result })).value++;
  }

  hook(hook: TimedHook, seconds: number): void {
    this.#handler.observe(hook, seconds);
  }
}

const PROCESS_METRICS = new WeakMap<PromClient, Prom.Registry>();

/**
 * The process's default metrics, collected once per process and shared by its servers:
 * prom-client's GC observer cannot be stopped, so one per server would outlive the server.
 */
export function processMetrics(prom: PromClient): Prom.Registry {
  let registry = PROCESS_METRICS.get(prom);
  if (registry === undefined) {
    registry = new prom.Registry();
    prom.collectDefaultMetrics({ register: registry });
    PROCESS_METRICS.set(prom, registry);
  }
  return registry;
}

/** Loads prom-client: only servers with metrics on pay for it. */
export async function loadProm(): Promise<PromClient> {
  return (await import('prom-client')).default as unknown as PromClient;
}

/** Where `metricsListen` says: `port`, `host:port` or `[v6]:port`. */
export function metricsAddress(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen) ?? /^()()(\d{1,5})$/.exec(listen);
  if (match === null) throw new Error(`metricsListen must be port, host:port or [v6]:port, got ${listen}`);
  // A bare port is this machine only; `:PORT` is every interface, as for `--listen`.
  const bare = !listen.includes(':');
  const host = match[1] || match[2] || (bare ? '127.0.0.1' : '');
  return { host, port: Number(match[3]) };
}

/** Serves `GET /metrics` from what `read` returns; anything else is 404. */
/** Whether a server takes new connections now; when not, why (`draining`, `not listening`). */
export type Readiness = () => string | undefined | Promise<string | undefined>;

/**
 * The metrics listener: `/metrics` (Prometheus text), `/healthz` (200 while the process answers)
 * and `/readyz` (200 while the server takes connections; 503 with the reason while it does not,
 * as when it drains on close), for load balancers and orchestrators.
 */
export async function serveMetrics(
  listen: string,
  read: () => Promise<{ text: string; contentType: string }>,
  log: Logger,
  notReady: Readiness = () => undefined,
): Promise<Server> {
  const { host, port } = metricsAddress(listen);
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const answer = (why: string | undefined): void => {
        res
          .writeHead(why === undefined ? 200 : 503, { 'content-type': 'text/plain' })
          .end(why === undefined ? 'ready\n' : `not ready: ${why}\n`);
      };
      Promise.resolve()
        .then(notReady)
        .then(answer, (err: unknown) => answer(`check failed: ${String(err)}`));
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    read().then(
      ({ text, contentType }) => res.writeHead(200, { 'content-type': contentType }).end(text),
      (err: unknown) => {
        log.error({ err }, 'metrics scrape failed');
        res.writeHead(500).end('metrics failed\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (host === '') server.listen(port, done);
    else server.listen(port, host, done);
  });
  log.info({ address: server.address() as AddressInfo }, 'metrics on /metrics, health on /healthz and /readyz');
  return server;
}
