/**
 * A rolling restart, then a drain, under load: clients send continuously while SIGHUP to the
 * primary replaces both workers, then while SIGTERM closes them. No connection is refused during
 * the restart, no client is cut in the middle of its data, and every message acknowledged with
 * 250 is in the Maildir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const FIXTURE = fileURLToPath(new URL('../fixtures/rolling-server.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sirocco-rolling-'));
let primary: ChildProcess | undefined;

afterAll(async () => {
  if (primary?.exitCode === null && primary.pid !== undefined) {
    const exited = new Promise((r) => primary?.once('exit', r));
    process.kill(primary.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Event {
  event: string;
  port?: number;
  pid?: number;
  workers?: number[];
}

/** What one session ended with. */
type Outcome = 'accepted' | 'deferred' | 'refused' | 'cut' | 'stalled';

/** One message over one connection: `refused` if the connection was refused or reset before the greeting. */
function sendOne(port: number, id: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const script = ['EHLO load.test', 'MAIL FROM:<a@b.test>', 'RCPT TO:<c@d.test>', 'DATA', `Message-Id: <${id}>\r\n\r\nbody\r\n.`];
    let step = 0;
    let text = '';
    let greeted = false;
    let done = false;
    const finish = (outcome: Outcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    // A session that gets no answer for 5 s is stalled: counted, never waited on for ever.
    const timer = setTimeout(() => finish('stalled'), 5000);
    socket.on('error', () => finish(greeted ? 'cut' : 'refused'));
    socket.on('close', () => finish(greeted ? (step >= 5 ? 'cut' : 'deferred') : 'refused'));
    socket.on('data', (data: Buffer) => {
      text += data.toString('latin1');
      let end;
      while ((end = text.indexOf('\r\n')) !== -1) {
        const line = text.slice(0, end);
        text = text.slice(end + 2);
        if (line[3] === '-') continue;
        greeted = true;
        const code = Number(line.slice(0, 3));
        if (step === 5) return finish(code === 250 ? 'accepted' : 'deferred');
        // 421 (the worker is draining) or any refusal before the data: the client tries again later.
        if (code >= 400) return finish('deferred');
        socket.write(`${script[step] ?? ''}\r\n`);
        step++;
      }
    });
  });
}

describe('rolling restart', () => {
  it('replaces both workers, then drains them, under load: nothing refused, nothing cut, every 250 on disk', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, MAILDIR: dir },
    });
    primary = child;
    const events: Event[] = [];
    let buffer = '';
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      buffer += text;
      for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
        events.push(JSON.parse(buffer.slice(0, nl)) as Event);
        buffer = buffer.slice(nl + 1);
      }
    });
    const waitFor = async (test: () => boolean, what: string): Promise<void> => {
      for (let i = 0; i < 300 && !test(); i++) await new Promise((r) => setTimeout(r, 50));
      if (!test()) throw new Error(`no ${what} in time`);
    };
    await waitFor(() => events.some((e) => e.event === 'ready'), 'ready');
    const ready = events.find((e) => e.event === 'ready') as Event;
    const port = ready.port ?? 0;
    const old = ready.workers ?? [];

    const outcomes: Record<Outcome, number> = { accepted: 0, deferred: 0, refused: 0, cut: 0, stalled: 0 };
    const acknowledged: string[] = [];
    let running = true;
    let sent = 0;
    const loop = async (n: number): Promise<void> => {
      for (let i = 0; running && i < 2000; i++) {
        const id = `m${n}.${i}@load.test`;
        const outcome = await sendOne(port, id);
        outcomes[outcome]++;
        sent++;
        if (outcome === 'accepted') acknowledged.push(id);
      }
    };
    const loops = Promise.all([0, 1, 2, 3].map(loop));
    await waitFor(() => sent >= 40, 'load');
    process.kill(child.pid ?? 0, 'SIGHUP');
    await waitFor(() => old.every((pid) => events.some((e) => e.event === 'exit' && e.pid === pid)), 'old workers exiting');
    const before = sent;
    await waitFor(() => sent >= before + 40, 'load after the restart');
    const duringRestart = { ...outcomes };

    // Then SIGTERM to the primary, the load still running: every worker drains.
    process.kill(child.pid ?? 0, 'SIGTERM');
    await waitFor(() => events.some((e) => e.event === 'closed'), 'the cluster closing');
    running = false;
    await loops;

    const fresh = events.filter((e) => e.event === 'listening').map((e) => e.pid);
    expect(fresh).toHaveLength(2);
    expect(fresh.some((pid) => old.includes(pid ?? 0))).toBe(false);
    // During the restart: no connection refused, none stalled. Once the port closes for good, a
    // new connection is refused, as it should be.
    expect(duringRestart.refused).toBe(0);
    expect(outcomes.stalled).toBe(0);
    // Never, restart or drain: a client cut in the middle of its data.
    expect(outcomes.cut).toBe(0);
    expect(outcomes.accepted).toBeGreaterThan(80);
    const stored = new Set(
      readdirSync(join(dir, 'new')).map((f) => /Message-Id: <([^>]+)>/.exec(readFileSync(join(dir, 'new', f), 'latin1'))?.[1]),
    );
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
  });
});
