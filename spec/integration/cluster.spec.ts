/** bind() + start(2): two worker processes share one port; a killed worker is replaced. */
import { makeCertificates } from '../helpers/certs.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient } from '../helpers/raw-client.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/cluster-server.ts', import.meta.url));

interface Event {
  event: string;
  port?: number;
  metricsPort?: number | null;
  pid?: number;
  workers?: number[];
}

let primary: ChildProcess | undefined;

afterEach(async () => {
  const child = primary;
  primary = undefined;
  if (child?.exitCode === null && child.pid !== undefined) {
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(child.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  }
});

function start(env: Record<string, string> = {}): { child: ChildProcess; next: (kind: string) => Promise<Event> } {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const events: Event[] = [];
  let waiting: (() => void) | undefined;
  let buffer = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    buffer += text;
    let nl;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      events.push(JSON.parse(buffer.slice(0, nl)) as Event);
      buffer = buffer.slice(nl + 1);
    }
    waiting?.();
  });
  const next = async (kind: string): Promise<Event> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const index = events.findIndex((e) => e.event === kind);
      if (index !== -1) return events.splice(index, 1)[0] as Event;
      if (Date.now() > deadline) throw new Error(`no ${kind} event in time`);
      await new Promise<void>((r) => {
        waiting = r;
        setTimeout(r, 100);
      });
    }
  };
  return { child, next };
}

/** Sends one message per connection and returns which pids handled them. */
async function deliver(port: number, count: number): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < count; i++) {
    const c = await RawClient.greeted(port);
    await c.command('HELO c.test');
    await c.command('MAIL FROM:<a@b.test>');
    await c.command('RCPT TO:<c@d.test>');
    await c.command('DATA');
    const reply = await c.command('x\r\n.');
    const match = /^250 2\.0\.0 handled by task [01] pid (\d+)\r\n$/.exec(reply);
    if (match === null) throw new Error(`unexpected reply ${reply}`);
    pids.add(Number(match[1]));
    c.close();
  }
  return pids;
}

describe('bind() + start(n)', () => {
  it('shares the port between two workers and replaces one that is killed', async () => {
    const { child, next } = start();
    primary = child;
    const ready = await next('ready');
    const port = ready.port ?? 0;
    const workers = ready.workers ?? [];
    expect(workers).toHaveLength(2);

    // Both workers take mail on the one port.
    expect([...(await deliver(port, 10))].sort()).toEqual([...workers].sort());

    // Kill one worker (a process our primary started); the primary replaces it.
    const victim = workers[0] ?? 0;
    process.kill(victim, 'SIGKILL');
    const replacement = await next('listening');
    expect(replacement.pid).not.toBe(victim);

    const after = await deliver(port, 10);
    expect(after.has(victim)).toBe(false);
    expect([...after].sort()).toEqual([workers[1], replacement.pid].sort());

    // SIGTERM to the primary closes every worker gracefully.
    process.kill(child.pid ?? 0, 'SIGTERM');
    expect(await next('closed')).toEqual({ event: 'closed' });
  });

  it('serves the sum of every worker’s metrics from the primary', async () => {
    const { child, next } = start({ METRICS: '1' });
    primary = child;
    const ready = await next('ready');
    const pids = await deliver(ready.port ?? 0, 10);
    expect(pids.size).toBe(2);
    const response = await fetch(`http://127.0.0.1:${ready.metricsPort ?? 0}/metrics`);
    const text = await response.text();
    expect(text).toContain('sirocco_smtpd_messages_total 10\n');
    expect(text).toMatch(/sirocco_smtpd_transactions_total\{outcome="completed"\} 10\n/);
    expect(text).toMatch(/sirocco_handler_duration_seconds_count\{hook="data"\} 10\n/);
    // The workers' process metrics, summed: two workers' memory is more than one's.
    expect(Number(/^process_resident_memory_bytes (\d+)/m.exec(text)?.[1])).toBeGreaterThan(20 * 1024 * 1024);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d+/m);
    const readyz = await fetch(`http://127.0.0.1:${ready.metricsPort ?? 0}/readyz`);
    expect([readyz.status, await readyz.text()]).toEqual([200, 'ready\n']);
  });

  it('counts the per-client limits across the workers, through the primary', async () => {
    const { child, next } = start({ LIMIT: '1' });
    primary = child;
    const ready = await next('ready');
    const port = ready.port ?? 0;
    const clients = await Promise.all([0, 1, 2, 3].map(() => RawClient.connect(port, '127.0.0.1', '127.0.0.2')));
    const first = await Promise.all(clients.map((c) => c.reply().catch(() => 'closed')));
    // Whichever workers took them, two of four were let in: the count is one for both workers.
    expect(first.filter((r) => r === '220 cluster.test ESMTP Sirocco\r\n')).toHaveLength(2);
    expect(first.filter((r) => r === '421 4.7.0 Too many connections from your address, try again later\r\n')).toHaveLength(2);
    const admitted = clients.filter((_, i) => first[i]?.startsWith('220'));
    expect(await admitted[0]?.command('QUIT')).toBe('221 2.0.0 Bye\r\n');
    await admitted[0]?.closedByServer();
    await new Promise((r) => setTimeout(r, 100));
    const again = await RawClient.connect(port, '127.0.0.1', '127.0.0.2');
    expect(await again.reply()).toBe('220 cluster.test ESMTP Sirocco\r\n');
    for (const c of [...clients, again]) c.close();
  });

  it('lets a TLS client resume its session on any worker: the ticket keys are shared', async () => {
    const certs = makeCertificates();
    try {
      const { child, next } = start({ TLS_DIR: certs.dir });
      primary = child;
      const ready = await next('ready');
      const port = ready.port ?? 0;
      let session: Buffer | undefined;
      const reused: boolean[] = [];
      const pids = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const c = await RawClient.ehlo(port);
        await c.command('STARTTLS');
        const socket = await c.startTls({ ca: certs.ca, servername: 'localhost', ...(session === undefined ? {} : { session }) });
        await c.command('EHLO c.test');
        await c.command('MAIL FROM:<a@b.test>');
        await c.command('RCPT TO:<c@d.test>');
        await c.command('DATA');
        pids.add(/pid (\d+)/.exec(await c.command('x\r\n.'))?.[1] ?? '');
        if (i > 0) reused.push(socket.isSessionReused());
        // TLS 1.3 sends its ticket after the handshake; the replies since have brought it.
        session = socket.getSession();
        c.close();
      }
      expect(pids.size).toBe(2);
      expect(reused).toEqual([true, true, true, true, true]);
    } finally {
      certs.cleanup();
    }
  });

  it('drains every worker and exits on SIGTERM to the primary, with no handler of the program', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../fixtures/plain-cluster.ts', import.meta.url))], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    primary = child;
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (t: string) => (out += t));
    for (let i = 0; i < 300 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
    const port = (JSON.parse(out.split('\n')[0] ?? '{}') as { port: number }).port;
    const idle = await RawClient.greeted(port);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    process.kill(child.pid ?? 0, 'SIGTERM');
    expect(await idle.closedByServer()).toBe('421 4.3.2 Service shutting down, closing connection\r\n');
    expect(await exited).toBe(0);
  });
});
