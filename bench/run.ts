/**
 * npm run bench: Sirocco against nodemailer's smtp-server, side by side in one run, alternating
 * which goes first in each round. Load comes from Postfix's smtp-source (a real SMTP client); the
 * idle-connection scenario opens raw sockets. Each server runs in a process of its own, so its CPU
 * time and memory are measured apart from the load generator's. Every load starts with a warm-up
 * that is not measured (both servers' JIT compilers settle). Reports medians, and ratios as the
 * median of each round's ratio: the two runs of a round are back to back, so they share the
 * machine's load of the moment.
 *
 * Row (h) compares Sirocco's outbound queue with Postfix instead (bench/deliver.ts).
 *
 * Usage: npm run bench [-- --rounds N] [-- --only a,am,at,b,bl,br,c,cl,cb,d,e,t,tr,f,fl,g,s,k,h,floods]
 *
 * The floods table (bench/floods.ts) runs once, after the rounds: one 200 MB flood per surface.
 */
import { authRow } from './auth.js';
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { makeCertificates, type TestCertificates } from '../spec/helpers/certs.js';
import { redisMissing, startRedis, type TestRedis } from '../spec/helpers/redis.js';
import { deliverRow } from './deliver.js';
import { floodsTable } from './floods.js';
import { sinkTable } from './sink.js';
import { median, openIdle, PERSISTENT_1KIB, requireTools, sendConcurrently, smtpSource } from './load.js';

type Kind = 'sirocco' | 'smtp-server' | 'floor';
const KINDS: readonly Kind[] = ['sirocco', 'smtp-server'];

interface Stats {
  messages: number;
  bytes: number;
  cpuMicros: number;
  rss: number;
  heapUsed: number;
  maxRss: number;
  young: number;
  refusals: number;
}

interface Sample {
  perSecond: number;
  cpuPerMessageMicros: number;
  maxRssMiB: number;
  bytesPerConnection?: number;
  heapPerConnection?: number;
  youngGrowthMiB?: number;
  firstGreetingMs?: number;
  rssGrowthMiB?: number;
  refused452?: number;
  accepted?: number;
}

interface Scenario {
  readonly key: string;
  readonly title: string;
  /** Whether the servers offer STARTTLS with the bench's throw-away certificate. */
  readonly tls?: boolean;
  /** Whether the row also runs Node's floor (bench/server.ts `floor`: Node's sockets, fixed replies). */
  readonly floor?: boolean;
  /** Options for bench/server.ts: `stream` (the handler streams), `budget=BYTES`. */
  readonly serverArgs?: readonly string[];
  run(server: Server): Promise<Sample>;
  /** A scenario that starts its servers itself, instead of the bench's own server process. */
  alone?(kind: Kind): Promise<Sample>;
}

const SERVER_SCRIPT = fileURLToPath(new URL('./server.ts', import.meta.url));
const args = process.argv.slice(2);
const ROUNDS = Number(args[args.indexOf('--rounds') + 1] ?? 5) || 5;
const ONLY = args.includes('--only') ? (args[args.indexOf('--only') + 1] ?? '').split(',') : undefined;

class Server {
  readonly kind: Kind;
  readonly #child: ChildProcess;
  port = 0;

  private constructor(kind: Kind, child: ChildProcess) {
    this.kind = kind;
    this.#child = child;
  }

  static async start(kind: Kind, tlsDir?: string, extra: readonly string[] = []): Promise<Server> {
    const child = fork(SERVER_SCRIPT, [kind, ...(tlsDir === undefined ? [] : ['tls', tlsDir]), ...extra], {
      // BENCH_SERVER_ARGS: more options for the servers' Node (`--cpu-prof --cpu-prof-dir=DIR` profiles a row).
      execArgv: ['--import', 'tsx', '--expose-gc', ...(process.env.BENCH_SERVER_ARGS?.split(' ').filter((a) => a !== '') ?? [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const server = new Server(kind, child);
    server.port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: unknown) => resolve((m as { port: number }).port));
      child.once('exit', (code) => reject(new Error(`${kind} server exited with ${String(code)}`)));
    });
    return server;
  }

  stats(): Promise<Stats> {
    return this.#ask('stats') as Promise<Stats>;
  }

  async gc(): Promise<void> {
    await this.#ask('gc');
  }

  #ask(what: string): Promise<unknown> {
    return new Promise((resolve) => {
      this.#child.once('message', resolve);
      this.#child.send(what);
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.#child.kill('SIGTERM');
    await exited;
  }
}

/** Runs `load` (which resolves to its wall time in seconds) and turns the server's stats into a sample. */
async function measure(server: Server, messages: number, load: () => Promise<number>): Promise<Sample> {
  const before = await server.stats();
  const seconds = await load();
  const after = await server.stats();
  const done = after.messages - before.messages;
  if (done !== messages) throw new Error(`${server.kind}: ${done} of ${messages} messages arrived`);
  return {
    perSecond: done / seconds,
    cpuPerMessageMicros: (after.cpuMicros - before.cpuMicros) / done,
    maxRssMiB: after.maxRss / 1048576,
  };
}

function loadScenario(
  key: string,
  title: string,
  messages: number,
  warmup: number,
  options: string[],
  serverArgs: string[] = [],
): Scenario {
  return {
    key,
    title,
    serverArgs,
    async run(server) {
      await smtpSource(server.port, [...options, '-m', String(warmup)]);
      return measure(server, messages, () => smtpSource(server.port, [...options, '-m', String(messages)]));
    },
  };
}

const IDLE = 2000;

/**
 * (d): what {@link IDLE} idle connections after EHLO add to a fresh server, after a GC: RSS, the
 * heap's live objects (V8's own count), and how much the young generation grew meanwhile (paid
 * once: it grows as objects survive collections and does not shrink back).
 */
const idleScenario: Scenario = {
  key: 'd',
  title: `(d) ${IDLE} idle connections after EHLO: memory per connection`,
  floor: true,
  async run(server) {
    const sockets: Socket[] = [];
    try {
      await server.gc();
      const before = await server.stats();
      for (let i = 0; i < IDLE; i += 100) {
        sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, IDLE - i) }, () => openIdle(server.port)))));
      }
      await server.gc();
      const after = await server.stats();
      return {
        perSecond: 0,
        cpuPerMessageMicros: 0,
        maxRssMiB: after.maxRss / 1048576,
        bytesPerConnection: (after.rss - before.rss) / IDLE,
        heapPerConnection: (after.heapUsed - before.heapUsed) / IDLE,
        youngGrowthMiB: (after.young - before.young) / 1048576,
      };
    } finally {
      for (const s of sockets) s.destroy();
    }
  },
};

/** A minimal SMTP client over STARTTLS: smtp-source has no TLS. The same client drives both servers. */
class StartTlsSession {
  #socket: TLSSocket | undefined;
  #buffer = '';
  #wake: (() => void) | undefined;

  /** Whether the TLS handshake resumed an earlier session (`resume`) instead of a full one. */
  resumed = false;

  /** `resume`: a session ticket of an earlier connection, offered for resumption; `ticket` hears each new ticket. */
  static async open(port: number, ca: Buffer, resume?: Buffer, ticket?: (session: Buffer) => void): Promise<StartTlsSession> {
    const session = new StartTlsSession();
    const plain = connect(port, '127.0.0.1');
    plain.setEncoding('latin1');
    const onPlain = (d: string): void => session.#push(d);
    plain.on('data', onPlain);
    await session.#expect('220');
    plain.write('EHLO bench.test\r\n');
    await session.#expect('250 ');
    plain.write('STARTTLS\r\n');
    await session.#expect('220');
    plain.off('data', onPlain);
    const secure = tlsConnect({
      socket: plain,
      ca,
      servername: 'localhost',
      minVersion: 'TLSv1.3',
      ...(resume === undefined ? {} : { session: resume }),
    });
    if (ticket !== undefined) secure.on('session', ticket);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    session.resumed = secure.isSessionReused();
    secure.setEncoding('latin1');
    secure.on('data', (d: string) => session.#push(d));
    session.#socket = secure;
    await session.command('EHLO bench.test\r\n', '250 ');
    return session;
  }

  async send(body: Buffer): Promise<void> {
    await this.command('MAIL FROM:<bench@sender.test>\r\n', '250');
    await this.command('RCPT TO:<sink@bench.test>\r\n', '250');
    await this.command('DATA\r\n', '354');
    // The final dot goes with a small message, in one TLS record, as mail clients send it.
    if (body.length > 64 * 1024) {
      this.#socket?.write(body);
      await this.command('.\r\n', '250');
    } else await this.command(Buffer.concat([body, Buffer.from('.\r\n')]), '250');
  }

  async command(line: string | Buffer, expected: string): Promise<void> {
    this.#socket?.write(line);
    await this.#expect(expected);
  }

  close(): void {
    this.#socket?.destroy();
  }

  /** QUIT, then waits for the server to close. */
  async quit(): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined) return;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('QUIT\r\n');
    // A server that never closes is not waited for past 10 s.
    const guard = setTimeout(() => socket.destroy(), 10_000);
    await closed;
    clearTimeout(guard);
  }

  #push(data: string): void {
    this.#buffer += data;
    this.#wake?.();
  }

  /** Waits for a whole reply whose last line starts with `expected`. */
  async #expect(expected: string): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const match = /(?:^|\n)(\d{3}) [^\n]*\n/.exec(this.#buffer);
      if (match !== null) {
        const line = this.#buffer.slice(0, match.index + match[0].length);
        this.#buffer = this.#buffer.slice(match.index + match[0].length);
        if (!(match[1] ?? '').startsWith(expected.trim().slice(0, 3))) throw new Error(`expected ${expected}, got ${line}`);
        return;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${expected}`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 1000);
      });
    }
  }
}

const TLS_SESSIONS = 4;
const TLS_MESSAGES = 40;

const tlsScenario: Scenario = {
  key: 'e',
  title: '(e) 5 MiB messages over STARTTLS, 4 sessions',
  tls: true,
  async run(server) {
    const ca = CERTS().ca;
    const line = `${'x'.repeat(76)}\r\n`;
    const body = Buffer.from(line.repeat(Math.ceil((5 * 1024 * 1024) / line.length)));
    const warmup = await StartTlsSession.open(server.port, ca);
    for (let i = 0; i < 4; i++) await warmup.send(body);
    warmup.close();
    return measure(server, TLS_MESSAGES, async () => {
      const started = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: TLS_SESSIONS }, async () => {
          const session = await StartTlsSession.open(server.port, ca);
          for (let i = 0; i < TLS_MESSAGES / TLS_SESSIONS; i++) await session.send(body);
          session.close();
        }),
      );
      return Number(process.hrtime.bigint() - started) / 1e9;
    });
  },
};

const HANDSHAKES = 400;
// Long enough for the JIT to settle. A connection's setup and TLS path run once per connection, so
// they are compiled late: after 300 connections Sirocco still spent about 300 µs per connection
// more than a bare Node STARTTLS server (most of it in unoptimised code and the compiler), after
// 3,000 about 100, after 6,000 none beyond the noise. The warm-up runs 20 at a time (a server that
// is slow per connection would otherwise take minutes to warm up).
const HANDSHAKE_WARMUP = 6000;
const HANDSHAKE_WARMUP_PARALLEL = 20;
const HANDSHAKE_PARALLEL = 4;

/**
 * (t) and (tr): a new connection per 1 KiB message, each upgraded with STARTTLS to TLS 1.3 before
 * it sends; with `resume`, each offers the session ticket the server gave an earlier connection.
 */
function handshakeScenario(key: string, title: string, resume: boolean): Scenario {
  return {
    key,
    title,
    tls: true,
    floor: true,
    async run(server) {
      const ca = CERTS().ca;
      const body = Buffer.from(`Subject: bench\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(12));
      let ticket: Buffer | undefined;
      let resumed = 0;
      const one = async (): Promise<void> => {
        const session = await StartTlsSession.open(server.port, ca, resume ? ticket : undefined, (t) => (ticket = t));
        if (session.resumed) resumed++;
        await session.send(body);
        await session.quit();
      };
      const many = async (count: number): Promise<number> => {
        const started = process.hrtime.bigint();
        for (let i = 0; i < count; i += HANDSHAKE_PARALLEL) await Promise.all(Array.from({ length: HANDSHAKE_PARALLEL }, one));
        return Number(process.hrtime.bigint() - started) / 1e9;
      };
      let warming = 0;
      await Promise.all(
        Array.from({ length: HANDSHAKE_WARMUP_PARALLEL }, async () => {
          while (warming++ < HANDSHAKE_WARMUP) await one();
        }),
      );
      resumed = 0;
      const sample = await measure(server, HANDSHAKES, () => many(HANDSHAKES));
      return { ...sample, accepted: resumed };
    },
  };
}

const STARTUP_SCRIPT = fileURLToPath(new URL('./startup-server.mjs', import.meta.url));

const startupScenario: Scenario = {
  key: 's',
  title: '(s) start-up: a fresh process, time to the first 220 and idle RSS',
  run: () => Promise.reject(new Error('row (s) starts its own servers')),
  async alone(kind) {
    if (!existsSync(fileURLToPath(new URL('../dist/lib/index.js', import.meta.url))))
      throw new Error('row (s) needs dist/: run npm run build');
    const started = process.hrtime.bigint();
    const child = fork(STARTUP_SCRIPT, [kind], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.once('message', (m: unknown) => resolve((m as { port: number }).port));
        child.once('exit', (code) => reject(new Error(`${kind} exited with ${String(code)}`)));
      });
      const greeted = await openIdle(port);
      const firstGreetingMs = Number(process.hrtime.bigint() - started) / 1e6;
      greeted.destroy();
      const rss = await new Promise<number>((resolve) => {
        child.once('message', (m: unknown) => resolve((m as { rss: number }).rss));
        child.send('rss');
      });
      return { perSecond: 0, cpuPerMessageMicros: 0, maxRssMiB: rss / 1048576, firstGreetingMs };
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  },
};

// BENCH_HUGE_MIB changes the size of (f)'s one message, to see that the growth does not follow it.
const HUGE = Number(process.env.BENCH_HUGE_MIB ?? 100) * 1024 * 1024;

/** (f): one 100 MiB message into a streaming handler; how far the server's RSS rises above its idle RSS. */
function hugeScenario(key: string, title: string, serverArgs: string[]): Scenario {
  return {
    key,
    title,
    serverArgs,
    async run(server) {
      await server.gc();
      const before = await server.stats();
      const sample = await measure(server, 1, () => smtpSource(server.port, ['-s', '1', '-l', String(HUGE), '-m', '1']));
      const after = await server.stats();
      return { ...sample, rssGrowthMiB: (after.maxRss - before.rss) / 1048576 };
    },
  };
}

const CROWD = 200;
const CROWD_SIZE = 5 * 1024 * 1024;
const CROWD_BUDGET = 128 * 1024 * 1024;

/** (g): 200 sessions at once, each with a 5 MiB message, into handlers that hold the body whole. */
const crowdScenario: Scenario = {
  key: 'g',
  title: `(g) ${CROWD} concurrent 5 MiB messages, buffered, budget ${CROWD_BUDGET / 1048576} MiB`,
  serverArgs: [`budget=${CROWD_BUDGET}`],
  async run(server) {
    await server.gc();
    const before = await server.stats();
    const outcome = await sendConcurrently(server.port, CROWD, CROWD_SIZE);
    const after = await server.stats();
    if (outcome.other > 0) throw new Error(`${server.kind}: ${outcome.other} messages neither accepted nor refused with 452`);
    return {
      perSecond: outcome.accepted / outcome.seconds,
      cpuPerMessageMicros: (after.cpuMicros - before.cpuMicros) / CROWD,
      maxRssMiB: after.maxRss / 1048576,
      rssGrowthMiB: (after.maxRss - before.rss) / 1048576,
      refused452: outcome.refused452,
      accepted: outcome.accepted,
    };
  },
};

// Throw-away certificates for the TLS row, made with openssl as the tests make theirs.
let certificates: TestCertificates | undefined;
const CERTS = (): TestCertificates => (certificates ??= makeCertificates());

const SCENARIOS: Scenario[] = [
  loadScenario('a', '(a) 20 persistent sessions, 1 KiB messages', 20_000, 2_000, PERSISTENT_1KIB),
  loadScenario('am', '(a) with metrics on (Sirocco counts; smtp-server as in (a))', 20_000, 2_000, PERSISTENT_1KIB, ['metrics']),
  loadScenario('at', '(a) with traces on (Sirocco records every span; smtp-server as in (a))', 20_000, 2_000, PERSISTENT_1KIB, ['traces']),
  loadScenario('b', '(b) one message per connection, 20 in parallel, 1 KiB', 4_000, 400, ['-s', '20', '-l', '1024']),
  loadScenario(
    'bl',
    '(b) with the per-client limits counted in memory (smtp-server as in (b))',
    4_000,
    400,
    ['-s', '20', '-l', '1024'],
    ['limits'],
  ),
  loadScenario(
    'br',
    '(b) with the per-client limits counted in Redis (smtp-server as in (b))',
    4_000,
    400,
    ['-s', '20', '-l', '1024'],
    ['redis'],
  ),
  loadScenario(
    'c',
    '(c) 5 MiB messages, 4 persistent sessions, streaming handlers',
    80,
    8,
    ['-d', '-s', '4', '-l', String(5 * 1024 * 1024)],
    ['stream'],
  ),
  loadScenario(
    'cl',
    '(c) the same, Sirocco reading lent chunks',
    80,
    8,
    ['-d', '-s', '4', '-l', String(5 * 1024 * 1024)],
    ['stream', 'lent'],
  ),
  loadScenario('cb', '(c) the same, handlers holding the body whole', 80, 8, ['-d', '-s', '4', '-l', String(5 * 1024 * 1024)]),
  hugeScenario('f', `(f) one ${HUGE / 1048576} MiB message into a streaming handler`, ['stream']),
  hugeScenario('fl', `(f) the same, Sirocco reading lent chunks`, ['stream', 'lent']),
  crowdScenario,
  idleScenario,
  tlsScenario,
  handshakeScenario('t', `(t) STARTTLS, a TLS 1.3 handshake and one 1 KiB message per connection, ${HANDSHAKE_PARALLEL} at a time`, false),
  handshakeScenario('tr', '(t) the same, each client resuming a session from a ticket', true),
  startupScenario,
];

/** The rows run with Node's floor too: Sirocco, the floor and smtp-server side by side, as ratios. */
function floorTable(chosen: readonly Scenario[], samples: ReadonlyMap<string, Sample[]>): string[] {
  const rows: string[] = [];
  for (const scenario of chosen.filter((s) => s.floor === true)) {
    const of = (kind: Kind): Sample[] => samples.get(`${scenario.key}/${kind}`) ?? [];
    const [s, f, r] = [of('sirocco'), of('floor'), of('smtp-server')];
    const row = (metric: string, pick: (x: Sample) => number, digits: number): void => {
      const ratio = (a: Sample[], b: Sample[]): string => {
        const ratios = a.map((x, i) => pick(x) / pick(b[i] ?? x));
        return `${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`;
      };
      const m = (x: Sample[]): string => median(x.map(pick)).toFixed(digits);
      rows.push(`| ${scenario.title} | ${metric} | ${m(s)} | ${m(f)} | ${m(r)} | ${ratio(s, f)} | ${ratio(f, r)} | ${ratio(s, r)} |`);
    };
    if (scenario.key === 'd') {
      row('KiB per connection', (x) => (x.bytesPerConnection ?? 0) / 1024, 1);
      row('heap used after a GC, KiB per connection', (x) => (x.heapPerConnection ?? 0) / 1024, 2);
    } else row('server CPU µs/connection', (x) => x.cpuPerMessageMicros, 0);
  }
  if (rows.length === 0) return [];
  return [
    '',
    "Against Node's floor (bench/server.ts `floor`: Node's sockets, and TLS sockets after STARTTLS, answering fixed replies):",
    '',
    '| scenario | metric | Sirocco | floor (Node) | smtp-server | Sirocco / floor | floor / smtp-server | Sirocco / smtp-server |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ];
}

async function onBenchServer(scenario: Scenario, kind: Kind): Promise<Sample> {
  const server = await Server.start(kind, scenario.tls === true ? CERTS().dir : undefined, scenario.serverArgs);
  try {
    return await scenario.run(server);
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  await requireTools(['smtp-source'], "run bench/setup.sh (installs Debian's postfix package without configuring a mail system)");
  const chosen = SCENARIOS.filter((s) => ONLY === undefined || ONLY.includes(s.key));
  if (ONLY === undefined || ONLY.includes('k')) await requireTools(['smtp-sink'], "row (k) needs Postfix's smtp-sink (bench/setup.sh)");
  // Row (br) keeps the limits in a redis-server of its own on loopback (Debian's package).
  let redis: TestRedis | undefined;
  if (chosen.some((s) => s.key === 'br')) {
    if (redisMissing !== undefined) throw new Error(`row (br): ${redisMissing}`);
    redis = await startRedis();
    process.env.BENCH_REDIS_URL = redis.url;
  }
  const samples = new Map<string, Sample[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const scenario of chosen) {
      const kinds: readonly Kind[] = scenario.floor === true ? [...KINDS, 'floor'] : KINDS;
      const order = round % 2 === 0 ? kinds : [...kinds].reverse();
      for (const kind of order) {
        const sample = scenario.alone === undefined ? await onBenchServer(scenario, kind) : await scenario.alone(kind);
        const key = `${scenario.key}/${kind}`;
        samples.set(key, [...(samples.get(key) ?? []), sample]);
        process.stderr.write(`round ${round + 1} ${scenario.key} ${kind}: ${JSON.stringify(sample)}\n`);
      }
    }
  }
  const lines = [`Node ${process.version}, ${ROUNDS} rounds, medians; ratio = median over rounds of Sirocco / smtp-server`, ''];
  if (chosen.length > 0) lines.push("| scenario | metric | Sirocco | smtp-server | ratio | rounds' range |", '|---|---|---|---|---|---|');
  for (const scenario of chosen) {
    const s = samples.get(`${scenario.key}/sirocco`) ?? [];
    const r = samples.get(`${scenario.key}/smtp-server`) ?? [];
    const row = (metric: string, pick: (x: Sample) => number, digits: number): void => {
      const a = median(s.map(pick));
      const b = median(r.map(pick));
      // Round i ran both servers back to back: its ratio is the pair's.
      const ratios = s.map((x, i) => pick(x) / pick(r[i] ?? x));
      const range = `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`;
      lines.push(
        `| ${scenario.title} | ${metric} | ${a.toFixed(digits)} | ${b.toFixed(digits)} | ${median(ratios).toFixed(2)}× | ${range} |`,
      );
    };
    // Counts have no meaningful ratio (the reference has no budget and never answers 452).
    const count = (metric: string, pick: (x: Sample) => number): void => {
      lines.push(`| ${scenario.title} | ${metric} | ${median(s.map(pick))} | ${median(r.map(pick))} | — | — |`);
    };
    if (scenario.key === 's') {
      row('ms to the first 220', (x) => x.firstGreetingMs ?? 0, 0);
      row('idle RSS MiB', (x) => x.maxRssMiB, 1);
    } else if (scenario.key === 'f' || scenario.key === 'fl') {
      row('peak RSS growth MiB', (x) => x.rssGrowthMiB ?? 0, 1);
      row('peak RSS MiB', (x) => x.maxRssMiB, 1);
    } else if (scenario.key === 'g') {
      row('peak RSS MiB', (x) => x.maxRssMiB, 1);
      row('peak RSS growth MiB', (x) => x.rssGrowthMiB ?? 0, 1);
      count('452 replies', (x) => x.refused452 ?? 0);
      count('accepted', (x) => x.accepted ?? 0);
    } else if (scenario.key === 't' || scenario.key === 'tr') {
      row('messages/s', (x) => x.perSecond, 1);
      row('server CPU µs/connection', (x) => x.cpuPerMessageMicros, 0);
      row('peak RSS MiB', (x) => x.maxRssMiB, 1);
      count(`handshakes resumed (of ${HANDSHAKES})`, (x) => x.accepted ?? 0);
    } else if (scenario.key === 'd') {
      row('KiB per connection', (x) => (x.bytesPerConnection ?? 0) / 1024, 1);
      row('heap used after a GC, KiB per connection', (x) => (x.heapPerConnection ?? 0) / 1024, 2);
      count("the young generation's growth, MiB", (x) => Number((x.youngGrowthMiB ?? 0).toFixed(1)));
      row('peak RSS MiB', (x) => x.maxRssMiB, 1);
    } else {
      row('messages/s', (x) => x.perSecond, 1);
      row('server CPU µs/message', (x) => x.cpuPerMessageMicros, 0);
      row('peak RSS MiB', (x) => x.maxRssMiB, 1);
    }
  }
  lines.push(...floorTable(chosen, samples));
  if (ONLY === undefined || ONLY.includes('k')) lines.push(...(await sinkTable(ROUNDS, CERTS().dir)));
  if (ONLY === undefined || ONLY.includes('h')) lines.push(...(await deliverRow(ROUNDS)));
  if (ONLY === undefined || ONLY.includes('ma')) lines.push(...(await authRow(ROUNDS)));
  if (ONLY === undefined || ONLY.includes('floods')) lines.push(...(await floodsTable()));
  console.log(lines.join('\n'));
  certificates?.cleanup();
  await redis?.close();
}

await main();
