/**
 * The floods table: for each input surface, the worst shape found of a 200 MB flood from one
 * client that never reads a reply, against a server in a process of its own. Reports the
 * server's peak RSS growth over its start and whether it still greets a new client afterwards;
 * the SMTP rows also against nodemailer's smtp-server. Target: every Sirocco row under 64 MiB.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
const TOTAL = 200 * MiB;
const SCRIPT = fileURLToPath(new URL('./flood-server.ts', import.meta.url));

interface Surface {
  readonly name: string;
  /** Which listener: smtp, lmtp, proxy or pop3; the reference has smtp only. */
  readonly port: 'smtp' | 'lmtp' | 'proxy' | 'pop3';
  /** What is sent first (once), then `unit` again and again up to 200 MB. */
  readonly opening: string;
  readonly unit: string | Buffer;
  /** The client reads (and drops) the replies: the server is not held back by its own output. */
  readonly reads?: boolean;
}

const SURFACES: readonly Surface[] = [
  { name: 'commands (NOOP, replies never read)', port: 'smtp', opening: '', unit: 'NOOP\r\n' },
  { name: 'one endless line (no CRLF)', port: 'smtp', opening: '', unit: 'x'.repeat(64 * 1024) },
  {
    name: 'DATA past maxMessageSize',
    port: 'smtp',
    opening: 'EHLO f.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n',
    unit: `${'y'.repeat(998)}\r\n`,
  },
  {
    name: 'BDAT in 1-byte chunks, replies read',
    port: 'smtp',
    opening: 'EHLO f.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n',
    unit: 'BDAT 1\r\nX',
    reads: true,
  },
  {
    name: 'AUTH exchange lines',
    port: 'smtp',
    opening: 'EHLO f.test\r\n',
    unit: `AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}\r\n`,
  },
  {
    name: 'LMTP DATA past maxMessageSize',
    port: 'lmtp',
    opening: 'LHLO f.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n',
    unit: `${'y'.repeat(998)}\r\n`,
  },
  { name: 'PROXY header that never ends', port: 'proxy', opening: 'PROXY TCP4 ', unit: '1'.repeat(4096) },
  { name: 'POP3 commands (CAPA, replies never read)', port: 'pop3', opening: '', unit: 'CAPA\r\n' },
  { name: 'POP3 NOOP during a stalled RETR', port: 'pop3', opening: 'USER u\r\nPASS pw\r\nRETR 1\r\n', unit: 'NOOP\r\n' },
];

interface Row {
  readonly growthMiB: number;
  readonly alive: boolean;
  readonly sentMiB: number;
}

class FloodServer {
  readonly #child: ChildProcess;
  readonly ports: Record<string, number>;
  private constructor(child: ChildProcess, ports: Record<string, number>) {
    this.#child = child;
    this.ports = ports;
  }
  static async start(kind: string): Promise<FloodServer> {
    const child = fork(SCRIPT, [kind], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ports = await new Promise<Record<string, number>>((resolve) =>
      child.once('message', (m) => resolve((m as { ports: Record<string, number> }).ports)),
    );
    return new FloodServer(child, ports);
  }
  rss(): Promise<{ rss: number; peak: number }> {
    this.#child.send({ ask: 'rss' });
    return new Promise((resolve) => this.#child.once('message', (m) => resolve(m as { rss: number; peak: number })));
  }
  stop(): void {
    this.#child.kill('SIGKILL');
  }
}

/** Floods from a client that never reads; stops at 200 MB, at a stall of 3 s, or after 90 s. */
async function flood(port: number, surface: Surface): Promise<number> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  if (surface.reads === true) socket.on('data', () => undefined);
  else socket.pause();
  const unit = Buffer.from(surface.unit);
  const piece = Buffer.alloc(Math.max(unit.length, Math.floor(MiB / unit.length) * unit.length));
  for (let at = 0; at + unit.length <= piece.length; at += unit.length) unit.copy(piece, at);
  socket.write(surface.opening);
  let written = 0;
  const deadline = Date.now() + 90_000;
  while (written < TOTAL && !socket.destroyed && Date.now() < deadline) {
    written += piece.length;
    if (socket.write(piece)) continue;
    const drained = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 3000);
      socket.once('drain', () => (clearTimeout(timer), resolve(true)));
    });
    if (!drained) break;
  }
  const sent = written - socket.writableLength;
  socket.destroy();
  return sent;
}

/** Whether a new client is greeted within 5 s (through a PROXY header on the proxy's listener). */
function greets(port: number, proxied: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    if (proxied) socket.write('PROXY TCP4 192.0.2.1 192.0.2.2 4000 25\r\n');
    const timer = setTimeout(() => (socket.destroy(), resolve(false)), 5000);
    socket.once('data', (d: Buffer) => (clearTimeout(timer), socket.destroy(), resolve(/^(220|\+OK)/.test(d.toString()))));
    socket.once('error', () => (clearTimeout(timer), resolve(false)));
  });
}

async function row(kind: string, surface: Surface): Promise<Row | undefined> {
  const server = await FloodServer.start(kind);
  try {
    const port = server.ports[surface.port];
    if (port === undefined) return undefined;
    const before = await server.rss();
    const sent = await flood(port, surface);
    const after = await server.rss();
    return { growthMiB: (after.peak - before.peak) / MiB, alive: await greets(port, surface.port === 'proxy'), sentMiB: sent / MiB };
  } finally {
    server.stop();
  }
}

/** The table's lines, for bench/run.ts. */
export async function floodsTable(): Promise<string[]> {
  const lines = [
    '',
    'Floods: one client, up to 200 MB of the worst shape found, never reading a reply; peak RSS growth of the server',
    '',
    '| surface | Sirocco growth MiB | alive | smtp-server growth MiB | alive | MB the server took (Sirocco) |',
    '|---|---|---|---|---|---|',
  ];
  for (const surface of SURFACES) {
    const ours = await row('sirocco', surface);
    const theirs = await row('smtp-server', surface);
    process.stderr.write(`floods ${surface.name}: ${JSON.stringify({ ours, theirs })}\n`);
    const cell = (r: Row | undefined): string => (r === undefined ? '— | —' : `${r.growthMiB.toFixed(1)} | ${r.alive ? 'yes' : 'NO'}`);
    lines.push(`| ${surface.name} | ${cell(ours)} | ${cell(theirs)} | ${(ours?.sentMiB ?? 0).toFixed(0)} |`);
  }
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log((await floodsTable()).join('\n'));
