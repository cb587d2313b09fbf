/**
 * npm run bench:instructions: user-space instructions per message under row (a)'s load (20
 * persistent smtp-source sessions, 1 KiB messages), counted by valgrind's callgrind. Unlike CPU
 * time, the count does not move with the machine's load, so it shows what a change to the hot
 * path is worth. It leaves out the kernel (the socket reads and writes, the same for every
 * server), which CPU time includes.
 *
 * Three servers run in turn, each in its own process under valgrind: `floor` (Node's sockets
 * answering fixed replies, parsing nothing), Sirocco, and nodemailer's smtp-server. A warm-up
 * load is not counted; collection is switched on for the measured load only.
 *
 * Needs valgrind (Debian's valgrind package) and smtp-source (bench/setup.sh).
 * With `--connections`, the load is row (b)'s instead: a new connection for each message (20 at
 * a time), so the count is per connection: its setup, one message, and its teardown.
 *
 * Usage: npm run bench:instructions [-- --messages N] [-- --connections] [-- --only sirocco]
 */
import { execFile, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PERSISTENT_1KIB, requireTools, smtpSource } from './load.js';

const SERVER_SCRIPT = fileURLToPath(new URL('./server.ts', import.meta.url));
const args = process.argv.slice(2);
const MESSAGES = Number(args[args.indexOf('--messages') + 1] ?? 3000) || 3000;
// `--connections`: one message per connection (row (b)'s shape), so the count is per connection.
const PER_CONNECTION = args.includes('--connections');
const LOAD = PER_CONNECTION ? ['-s', '20', '-l', '1024'] : PERSISTENT_1KIB;
// Under valgrind everything runs about fifty times slower, so the JIT needs a longer warm-up.
const WARMUP = 6000;
// The warm-up runs in rounds, each a whole smtp-source run whose sessions say EHLO first and QUIT
// last. With one round, the first QUITs and the measured run's new sessions met code the JIT had
// compiled for MAIL/RCPT/DATA alone: it threw that code away and compiled it again inside the
// measured window, which then counted the compiler's work (about a third of the total).
const WARMUP_ROUNDS = 3;
const ALL_KINDS = ['floor', 'sirocco', 'smtp-server'] as const;
// `--only sirocco` (or a comma list) counts those servers alone: quicker while working on the hot path.
const ONLY = args.includes('--only') ? (args[args.indexOf('--only') + 1] ?? '').split(',') : undefined;
const KINDS = ALL_KINDS.filter((k) => ONLY === undefined || ONLY.includes(k));

function run(command: string, commandArgs: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(command, commandArgs, { timeout: 60_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`${command} failed: ${err.message} ${stderr}`)) : resolve(),
    ),
  );
}

async function count(kind: (typeof ALL_KINDS)[number]): Promise<number> {
  const child = fork(SERVER_SCRIPT, [kind], {
    execPath: 'valgrind',
    execArgv: [
      '--tool=callgrind',
      '--smc-check=all-non-file',
      '--instr-atstart=no',
      // BENCH_CALLGRIND_DIR keeps each server's profile there (callgrind.KIND) for callgrind_annotate.
      `--callgrind-out-file=${process.env.BENCH_CALLGRIND_DIR === undefined ? '/dev/null' : `${process.env.BENCH_CALLGRIND_DIR}/callgrind.${kind}`}`,
      process.execPath,
      // With a profile kept, Node also writes /tmp/perf-PID.map (each JIT function's address
      // range and name), which names the `???` addresses of JavaScript in callgrind_annotate's output.
      // (Node then also keeps V8's log: it goes beside the profile, not into the working folder.)
      ...(process.env.BENCH_CALLGRIND_DIR === undefined
        ? []
        : ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${process.env.BENCH_CALLGRIND_DIR}/v8.${kind}.log`]),
      '--import',
      'tsx',
    ],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: unknown) => resolve((m as { port: number }).port));
      child.once('exit', (code) => reject(new Error(`${kind} exited with ${String(code)}: ${stderr}`)));
    });
    const pid = String(child.pid);
    for (let round = 0; round < WARMUP_ROUNDS; round++) {
      await smtpSource(port, [...LOAD, '-m', String(WARMUP / WARMUP_ROUNDS)]);
    }
    await run('callgrind_control', ['-i', 'on', pid]);
    await smtpSource(port, [...LOAD, '-m', String(MESSAGES)]);
    await run('callgrind_control', ['-i', 'off', pid]);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  const collected = /Collected : (\d+)/.exec(stderr)?.[1];
  if (collected === undefined) throw new Error(`${kind}: no instruction count in valgrind's output: ${stderr.slice(-500)}`);
  return Number(collected) / MESSAGES;
}

async function main(): Promise<void> {
  await requireTools(
    ['valgrind', 'callgrind_control', 'smtp-source'],
    "install Debian's valgrind package, and run bench/setup.sh for smtp-source",
  );
  const results = new Map<string, number>();
  for (const kind of KINDS) {
    const perMessage = await count(kind);
    results.set(kind, perMessage);
    process.stderr.write(`${kind}: ${Math.round(perMessage)} instructions per ${PER_CONNECTION ? 'connection' : 'message'}\n`);
  }
  const floor = results.get('floor');
  const sirocco = results.get('sirocco');
  const reference = results.get('smtp-server');
  // A server left out with `--only` has no row, and nothing is compared with it.
  const k = (n: number | undefined): string => (n === undefined ? '—' : `${(n / 1000).toFixed(0)}k`);
  const above = (n: number | undefined): string => (n === undefined || floor === undefined ? '—' : k(n - floor));
  const row = (name: string, n: number | undefined, aboveFloor: string): string[] =>
    n === undefined ? [] : [`| ${name} | ${k(n)} | ${aboveFloor} |`];
  const lines = [
    `Node ${process.version}, ${MESSAGES} messages${PER_CONNECTION ? ', one per connection,' : ''} after a warm-up of ${WARMUP} in ${WARMUP_ROUNDS} runs; user-space instructions per ${PER_CONNECTION ? 'connection' : 'message'} (callgrind)`,
    '',
    `| server | instructions per ${PER_CONNECTION ? 'connection' : 'message'} | above the floor |`,
    '|---|---|---|',
    ...row("floor (Node's sockets, fixed replies)", floor, '—'),
    ...row('Sirocco', sirocco, above(sirocco)),
    ...row('smtp-server', reference, above(reference)),
  ];
  if (sirocco !== undefined && reference !== undefined) {
    const aboveRatio = floor === undefined ? '' : `, ${((sirocco - floor) / (reference - floor)).toFixed(2)}× above the floor`;
    lines.push('', `Sirocco / smtp-server: ${(sirocco / reference).toFixed(2)}× in all${aboveRatio}`);
  }
  console.log(lines.join('\n'));
}

await main();
