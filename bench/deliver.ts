/**
 * Row (h) of npm run bench: mail accepted into a durable queue and delivered to a sink exchanger,
 * end to end. Sirocco (`Deliver`, the MX found through a DNS server the bench runs) against a
 * private Postfix instance relaying the same load to the same sink (its own config and queue in a
 * temp folder, listening on loopback only, stopped at the end). Both flush every message to disk
 * before their 250. The sink is nodemailer's smtp-server in a process of its own, counting.
 *
 * Measured per round, each side on a warm server: smtp-source sends N messages of 1 KiB over 20
 * sessions; the time runs until the sink has all N. CPU is the MTA's alone: Sirocco's process,
 * and Postfix's master with every process it runs (read from /proc), the sink's excluded.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDns } from '../spec/helpers/dns.js';
import { postfixUnavailable, privatePostfix } from '../spec/helpers/postfix.js';
import { median, PERSISTENT_1KIB, smtpSource } from './load.js';

const SERVER_SCRIPT = fileURLToPath(new URL('./server.ts', import.meta.url));
const MESSAGES = 2000;
const WARMUP = 300;

interface Proc {
  readonly child: ChildProcess;
  readonly port: number;
  ask(): Promise<{ messages: number; cpuMicros: number; maxRss: number }>;
  stop(): Promise<void>;
}

async function forkServer(args: string[]): Promise<Proc> {
  const child = fork(SERVER_SCRIPT, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: unknown) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`bench server ${args[0] ?? ''} exited with ${String(code)}`)));
  });
  return {
    child,
    port,
    ask: () =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve(m as { messages: number; cpuMicros: number; maxRss: number }));
        child.send('stats');
      }),
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A private Postfix relaying everything from loopback to the sink; its CPU, its stop. */
async function startPostfix(root: string, sinkPort: number, port: number): Promise<{ cpuMicros: () => number; stop: () => Promise<void> }> {
  mkdirSync(root);
  chmodSync(join(root, '..'), 0o755);
  // Debian's services, none chrooted (the private queue has no copy of /etc), smtpd on our port.
  const postfix = privatePostfix(
    root,
    [
      'myhostname = postfix.bench.test',
      'mydomain = bench.test',
      'mynetworks = 127.0.0.0/8',
      `relayhost = [127.0.0.1]:${sinkPort}`,
      'smtpd_relay_restrictions = permit_mynetworks, reject',
      'smtp_host_lookup = native',
      'smtpd_peername_lookup = no',
    ],
    `127.0.0.1:${port}`,
    true,
  );
  await postfix.start();
  const masterPid = postfix.masterPid();
  const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  /** The master's time and its children's (living ones, and those it reaped), in µs. */
  const cpuMicros = (): number => {
    let total = 0;
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue;
      }
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      if (Number(pid) !== masterPid && ppid !== masterPid) continue;
      // utime, stime, cutime, cstime: fields 14 to 17 of the whole line.
      total += [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
    }
    return (total / ticks) * 1e6;
  };
  return { cpuMicros, stop: () => postfix.stop() };
}

/** Sends `count` messages to `port` and waits until the sink has them; seconds end to end. */
async function endToEnd(port: number, sink: Proc, count: number): Promise<number> {
  const before = (await sink.ask()).messages;
  const started = process.hrtime.bigint();
  await smtpSource(port, [...PERSISTENT_1KIB, '-m', String(count)]);
  const deadline = Date.now() + 300_000;
  while ((await sink.ask()).messages < before + count) {
    if (Date.now() > deadline) throw new Error(`the sink got ${(await sink.ask()).messages - before} of ${count} messages`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

interface Sample {
  perSecond: number;
  cpuPerMessageMicros: number;
}

/** Runs row (h) for `rounds` rounds; resolves to the lines of its table. */
export async function deliverRow(rounds: number): Promise<string[]> {
  const title = '(h) queued (fsync) and delivered to a sink MX, 20 sessions, 1 KiB';
  const dns = await startDns({ 'bench.test': { mx: [[10, 'sink.bench.test']] }, 'sink.bench.test': { a: ['127.0.0.1'] } });
  const sink = await forkServer(['smtp-server']);
  const root = mkdtempSync(join(tmpdir(), 'sirocco-bench-h-'));
  const missing = postfixUnavailable();
  let postfix: Awaited<ReturnType<typeof startPostfix>> | undefined;
  let postfixError = missing;
  const postfixPort = 20000 + Math.floor(Math.random() * 20000);
  if (missing === undefined) {
    try {
      postfix = await startPostfix(join(root, 'postfix'), sink.port, postfixPort);
    } catch (err) {
      postfixError = `the private Postfix did not start: ${(err as Error).message}`;
    }
  }
  const sirocco: Sample[] = [];
  const reference: Sample[] = [];
  try {
    if (postfix !== undefined) await endToEnd(postfixPort, sink, WARMUP);
    for (let round = 0; round < rounds; round++) {
      const siroccoFirst = round % 2 === 0;
      for (const side of siroccoFirst ? ['sirocco', 'postfix'] : ['postfix', 'sirocco']) {
        if (side === 'postfix') {
          if (postfix === undefined) continue;
          const cpu = postfix.cpuMicros();
          const seconds = await endToEnd(postfixPort, sink, MESSAGES);
          reference.push({ perSecond: MESSAGES / seconds, cpuPerMessageMicros: (postfix.cpuMicros() - cpu) / MESSAGES });
        } else {
          const queue = join(root, `queue-${round}`);
          const mta = await forkServer(['deliver', `queue=${queue}`, `dns=${dns.server}`, `mx-port=${sink.port}`]);
          try {
            await endToEnd(mta.port, sink, WARMUP);
            const cpu = (await mta.ask()).cpuMicros;
            const seconds = await endToEnd(mta.port, sink, MESSAGES);
            sirocco.push({ perSecond: MESSAGES / seconds, cpuPerMessageMicros: ((await mta.ask()).cpuMicros - cpu) / MESSAGES });
          } finally {
            await mta.stop();
          }
        }
        process.stderr.write(
          `round ${round + 1} h ${side}: ${JSON.stringify((side === 'postfix' ? reference : sirocco).at(-1) ?? null)}\n`,
        );
      }
    }
  } finally {
    await postfix?.stop();
    await sink.stop();
    await dns.close();
    rmSync(root, { recursive: true, force: true });
  }
  const lines = ['', `Row (h), ${rounds} rounds, medians; ratio = median over rounds of Sirocco / Postfix`, ''];
  lines.push("| scenario | metric | Sirocco | Postfix | ratio | rounds' range |", '|---|---|---|---|---|---|');
  const row = (metric: string, pick: (x: Sample) => number, digits: number): void => {
    const a = median(sirocco.map(pick));
    if (reference.length === 0) {
      lines.push(`| ${title} | ${metric} | ${a.toFixed(digits)} | — (${postfixError ?? 'not run'}) | — | — |`);
      return;
    }
    const ratios = sirocco.map((x, i) => pick(x) / pick(reference[i] ?? x));
    const range = `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`;
    lines.push(
      `| ${title} | ${metric} | ${a.toFixed(digits)} | ${median(reference.map(pick)).toFixed(digits)} | ${median(ratios).toFixed(2)}× | ${range} |`,
    );
  };
  row('messages/s end to end', (x) => x.perSecond, 1);
  row('MTA CPU µs/message', (x) => x.cpuPerMessageMicros, 0);
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const rounds = Number(args[args.indexOf('--rounds') + 1] ?? 3) || 3;
  console.log((await deliverRow(rounds)).join('\n'));
}
