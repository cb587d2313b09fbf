/**
 * Row (k): Sirocco against Postfix's `smtp-sink`, the C reference for what an SMTP server's
 * connection costs, and against the floor (bench/server.ts `floor`: Node's sockets answering
 * fixed replies, parsing nothing), which is what any Node server pays. Two loads from
 * smtp-source: row (a)'s (persistent sessions, CPU per message) and a new connection per message
 * (CPU per connection). Sirocco offers STARTTLS (the client does not use it), as a deployed server
 * does. CPU is each server's own: `process.cpuUsage()` for the Node processes, `/proc/PID/stat`
 * for smtp-sink. smtp-sink counts nothing, so a load counts as done when smtp-source exits cleanly.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from '../spec/helpers/server.js';
import { median, PERSISTENT_1KIB, smtpSource } from './load.js';

const SERVER_SCRIPT = fileURLToPath(new URL('./server.ts', import.meta.url));

interface Load {
  readonly title: string;
  readonly metric: string;
  readonly options: readonly string[];
  readonly count: number;
  readonly warmup: number;
}

const LOADS: readonly Load[] = [
  {
    title: '(k) 20 persistent sessions, 1 KiB messages',
    metric: 'server CPU µs/message',
    options: PERSISTENT_1KIB,
    count: 20_000,
    warmup: 2_000,
  },
  {
    title: '(k) one message per connection, 20 in parallel, 1 KiB',
    metric: 'server CPU µs/connection',
    options: ['-s', '20', '-l', '1024'],
    count: 10_000,
    warmup: 2_000,
  },
];

interface Measured {
  readonly port: number;
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

async function nodeServer(args: string[]): Promise<Measured> {
  const child: ChildProcess = fork(SERVER_SCRIPT, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: unknown) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`bench server ${args[0] ?? ''} exited with ${String(code)}`)));
  });
  return {
    port,
    cpuMicros: () =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve((m as { cpuMicros: number }).cpuMicros));
        child.send('stats');
      }),
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function smtpSink(): Promise<Measured> {
  const port = await freePort();
  // As root, smtp-sink insists on a user to run as.
  const user = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  const child = spawn('smtp-sink', [...user, `127.0.0.1:${port}`, '256'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await smtpSource(port, ['-m', '1']).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) throw new Error('smtp-sink did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    cpuMicros: () => {
      const stat = readFileSync(`/proc/${String(child.pid)}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime and stime: fields 14 and 15 of the whole line.
      return Promise.resolve(((Number(fields[11]) + Number(fields[12])) / ticks) * 1e6);
    },
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function cpuPer(server: Measured, load: Load): Promise<number> {
  await smtpSource(server.port, [...load.options, '-m', String(load.warmup)]);
  const before = await server.cpuMicros();
  await smtpSource(server.port, [...load.options, '-m', String(load.count)]);
  return ((await server.cpuMicros()) - before) / load.count;
}

type Side = 'sirocco' | 'smtp-sink' | 'floor';

/** Runs row (k) for `rounds` rounds; `tlsDir` holds the throw-away certificate Sirocco offers. */
export async function sinkTable(rounds: number, tlsDir: string): Promise<string[]> {
  const starts: Record<Side, () => Promise<Measured>> = {
    sirocco: () => nodeServer(['sirocco', 'tls', tlsDir]),
    'smtp-sink': smtpSink,
    floor: () => nodeServer(['floor']),
  };
  const samples = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    const order: Side[] = round % 2 === 0 ? ['sirocco', 'smtp-sink', 'floor'] : ['floor', 'smtp-sink', 'sirocco'];
    for (const side of order) {
      const server = await starts[side]();
      try {
        for (const load of LOADS) {
          const cpu = await cpuPer(server, load);
          samples.set(`${load.title}/${side}`, [...(samples.get(`${load.title}/${side}`) ?? []), cpu]);
          process.stderr.write(`round ${round + 1} k ${side}: ${load.title}: ${cpu.toFixed(0)} µs\n`);
        }
      } finally {
        await server.stop();
      }
    }
  }
  const lines = ['', `Row (k), ${rounds} rounds, medians; ratios = median over rounds of each server / smtp-sink`, ''];
  lines.push(
    "| scenario | metric | Sirocco | floor (Node) | smtp-sink (C) | Sirocco / smtp-sink | rounds' range | floor / smtp-sink | Sirocco / floor |",
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const load of LOADS) {
    const of = (side: Side): number[] => samples.get(`${load.title}/${side}`) ?? [];
    const sink = of('smtp-sink');
    const ratios = (side: Side): number[] => of(side).map((x, i) => x / (sink[i] ?? x));
    const s = ratios('sirocco');
    const overFloor = of('sirocco').map((x, i) => x / (of('floor')[i] ?? x));
    lines.push(
      `| ${load.title} | ${load.metric} | ${median(of('sirocco')).toFixed(0)} | ${median(of('floor')).toFixed(0)} | ${median(sink).toFixed(0)} | ` +
        `${median(s).toFixed(2)}× | ${Math.min(...s).toFixed(2)}–${Math.max(...s).toFixed(2)} | ${median(ratios('floor')).toFixed(2)}× | ${median(overFloor).toFixed(2)}× |`,
    );
  }
  return lines;
}
