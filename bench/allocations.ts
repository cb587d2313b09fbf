/**
 * npm run bench:allocations: bytes each server allocates on the JavaScript heap per connection
 * and per message, the garbage included, from V8's sampling heap profiler (which, asked to, also
 * counts the objects a collection has freed since). What a connection leaves for the collector
 * sets how often it runs, and how much survives a scavenge sets how far the young generation
 * grows (row (d)'s RSS); unlike CPU time, the figure barely moves with the machine's load.
 *
 * Three loads, each after a warm-up of the same shape: a new connection for each 1 KiB message
 * (row (b)'s shape, smtp-source, 20 at a time: HELO, MAIL, RCPT, DATA, QUIT), 20 persistent
 * sessions (row (a)'s), and row (d)'s idle connections (greeting, EHLO, then nothing; measured
 * while they open). Servers: `floor` (Node's sockets answering fixed replies), Sirocco and
 * nodemailer's smtp-server, each in its own process (bench/server.ts).
 *
 * Usage: npm run bench:allocations [-- --only sirocco[,floor]]; with BENCH_HEAP_PROFILE=DIR each
 * server also writes its profiles there (KIND-N.heapprofile: DevTools' Memory tab reads them).
 */
import { fork } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { openIdle, PERSISTENT_1KIB, requireTools, smtpSource } from './load.js';

const SERVER_SCRIPT = fileURLToPath(new URL('./server.ts', import.meta.url));
const args = process.argv.slice(2);
const ALL_KINDS = ['floor', 'sirocco', 'smtp-server'] as const;
type Kind = (typeof ALL_KINDS)[number];
const ONLY = args.includes('--only') ? (args[args.indexOf('--only') + 1] ?? '').split(',') : undefined;
const KINDS = ALL_KINDS.filter((k) => ONLY === undefined || ONLY.includes(k));
const MEASURED = 3000;
const IDLE = 2000;

interface Load {
  readonly name: string;
  readonly unit: string;
  /** Runs `count` of the load's units (connections or messages) against the port. */
  run(port: number, count: number): Promise<void>;
}

const LOADS: readonly Load[] = [
  {
    name: 'one 1 KiB message per connection (smtp-source -s 20)',
    unit: 'connection',
    run: async (port, count) => void (await smtpSource(port, ['-s', '20', '-l', '1024', '-m', String(count)])),
  },
  {
    name: '20 persistent sessions, 1 KiB messages',
    unit: 'message',
    run: async (port, count) => void (await smtpSource(port, [...PERSISTENT_1KIB, '-m', String(count)])),
  },
];

/** Asks the server one IPC question and waits for an answer that `matches`. */
function ask(child: ReturnType<typeof fork>, question: string, matches: (m: unknown) => boolean): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${question} in 60 s`)), 60_000);
    const onMessage = (m: unknown): void => {
      if (typeof m === 'object' && m !== null && 'error' in m) reject(new Error(String(m.error)));
      else if (!matches(m)) return;
      else resolve(m);
      clearTimeout(timer);
      child.off('message', onMessage);
    };
    child.on('message', onMessage);
    child.send(question);
  });
}

/** Bytes allocated while `work` runs, in the server. */
async function allocatedDuring(child: ReturnType<typeof fork>, work: () => Promise<void>): Promise<number> {
  await ask(child, 'gc', (m) => m === 'gc-done');
  await ask(child, 'alloc-start', (m) => m === 'alloc-started');
  await work();
  const answer = (await ask(child, 'alloc-stop', (m) => typeof m === 'object' && m !== null && 'allocated' in m)) as { allocated: number };
  return answer.allocated;
}

/** Bytes per unit of each load, and per idle connection, for one server. */
async function measure(kind: Kind): Promise<number[]> {
  const child = fork(SERVER_SCRIPT, [kind], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: unknown) => resolve((m as { port: number }).port));
      child.once('exit', (code) => reject(new Error(`${kind} exited with ${String(code)}`)));
    });
    const perUnit: number[] = [];
    for (const load of LOADS) {
      // The warm-up: the JIT compiles the path before anything is counted.
      for (let round = 0; round < 3; round++) await load.run(port, 2000);
      perUnit.push((await allocatedDuring(child, () => load.run(port, MEASURED))) / MEASURED);
    }
    const open = async (count: number, into: Socket[]): Promise<void> => {
      for (let i = 0; i < count; i += 100) {
        into.push(...(await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => openIdle(port)))));
      }
    };
    const warm: Socket[] = [];
    await open(500, warm);
    for (const s of warm) s.destroy();
    const idle: Socket[] = [];
    try {
      perUnit.push((await allocatedDuring(child, () => open(IDLE, idle))) / IDLE);
    } finally {
      for (const s of idle) s.destroy();
    }
    return perUnit;
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

async function main(): Promise<void> {
  await requireTools(['smtp-source'], 'run bench/setup.sh for smtp-source');
  const results = new Map<Kind, number[]>();
  for (const kind of KINDS) {
    const perUnit = await measure(kind);
    results.set(kind, perUnit);
    process.stderr.write(`${kind}: ${perUnit.map((n) => Math.round(n)).join(', ')} bytes\n`);
  }
  const kib = (n: number | undefined): string => (n === undefined ? '—' : (n / 1024).toFixed(2));
  const ratio = (a: number | undefined, b: number | undefined): string =>
    a === undefined || b === undefined ? '—' : `${(a / b).toFixed(2)}×`;
  const rows = [...LOADS.map((l) => `${l.name}, per ${l.unit}`), `${IDLE} idle connections after EHLO, per connection`];
  const lines = [
    `Node ${process.version}; KiB allocated on the JavaScript heap (garbage included; V8's sampling heap profiler), ${MEASURED} units measured after a warm-up`,
    '',
    '| load | floor | Sirocco | smtp-server | Sirocco / floor | Sirocco / smtp-server |',
    '|---|---|---|---|---|---|',
    ...rows.map((name, i) => {
      const [f, s, r] = [results.get('floor')?.[i], results.get('sirocco')?.[i], results.get('smtp-server')?.[i]];
      return `| ${name} | ${kib(f)} | ${kib(s)} | ${kib(r)} | ${ratio(s, f)} | ${ratio(s, r)} |`;
    }),
  ];
  console.log(lines.join('\n'));
}

await main();
