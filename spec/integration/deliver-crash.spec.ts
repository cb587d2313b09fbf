/**
 * The queue survives `kill -9`: what was answered 250 is delivered after a restart, once to each
 * recipient; and the workers of a cluster share one queue folder without delivering twice.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDns, type TestDns } from '../helpers/dns.js';
import { plainTransport } from '../helpers/mailer.js';
import { startFleet, tempQueue, type Fleet } from '../helpers/outbound.js';
import { startTsx, stopAll, type Started } from '../helpers/processes.js';
import { until } from '../helpers/server.js';

let dns: TestDns;
const cleanups: (() => void | Promise<void>)[] = [];
const FIXTURE = 'spec/fixtures/deliver-server.ts';

beforeAll(async () => {
  dns = await startDns({ 'k.test': { mx: [[10, 'mx.k.test']] }, 'mx.k.test': { a: ['127.0.0.3'] } });
});
afterAll(async () => {
  await dns.close();
});
afterEach(async () => {
  await stopAll();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** Starts the fixture; resolves with its port once it printed it. */
async function startDeliver(queueDir: string, deliveryPort: number, workers = 0): Promise<{ started: Started; port: number }> {
  const started = startTsx([FIXTURE], {
    QUEUE_DIR: queueDir,
    DNS: dns.server,
    DELIVERY_PORT: String(deliveryPort),
    WORKERS: String(workers),
  });
  await until(() => started.stdout().includes('\n') || started.child.exitCode !== null, 20_000);
  const line = started.stdout().split('\n')[0] ?? '';
  if (!line.startsWith('{')) throw new Error(`the fixture did not start: ${started.stderr()}`);
  return { started, port: (JSON.parse(line) as { port: number }).port };
}

async function submitMany(port: number, count: number): Promise<string[]> {
  const transport = plainTransport(port);
  const replies: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const info = await transport.sendMail({
        envelope: { from: 'a@sender.test', to: [`r${i}@k.test`] },
        raw: `Subject: m${i}\r\n\r\nx\r\n`,
      });
      replies.push(info.response);
    }
  } finally {
    transport.close();
  }
  return replies;
}

function killHard(started: Started): Promise<number | null> {
  process.kill(started.child.pid ?? 0, 'SIGKILL');
  return started.exited;
}

/** Each recipient once: the count of arrivals per recipient. */
function counts(fleet: Fleet): Map<string, number> {
  const seen = new Map<string, number>();
  for (const a of fleet.arrivals) for (const r of a.rcptTos) seen.set(r, (seen.get(r) ?? 0) + 1);
  return seen;
}

describe('Deliver after kill -9', () => {
  it('delivers every acknowledged message once after a restart, those waiting and the one cut off mid-delivery', async () => {
    // 127.0.0.2 holds the fleet's port; the exchanger of k.test (127.0.0.3) is down at first.
    const fleet = await startFleet('127.0.0.2');
    cleanups.push(() => fleet.close());
    const queue = tempQueue();
    cleanups.push(queue.cleanup);
    const first = await startDeliver(queue.dir, fleet.port);
    const replies = await submitMany(first.port, 10);
    expect(replies.every((r) => /^250 2\.0\.0 Ok: queued as [a-z0-9]+$/.test(r))).toBe(true);
    // The exchanger comes up slow: the server is killed while it waits for a RCPT reply, holding a claim.
    await fleet.add('127.0.0.3', { slowRcptMs: 1500 });
    await until(() => (fleet.connections.get('127.0.0.3') ?? 0) > 0, 10_000);
    expect(await killHard(first.started)).toBe(null);
    expect(fleet.arrivals).toEqual([]);

    await startDeliver(queue.dir, fleet.port);
    await until(() => counts(fleet).size === 10, 60_000);
    // A while longer, for any second copy to show.
    await new Promise((r) => setTimeout(r, 1500));
    expect([...counts(fleet).values()]).toEqual(Array(10).fill(1));
  });
});

describe('Deliver under start(2)', () => {
  it('two workers share the queue folder and deliver each message once', async () => {
    const fleet = await startFleet('127.0.0.3');
    cleanups.push(() => fleet.close());
    const queue = tempQueue();
    cleanups.push(queue.cleanup);
    const { port } = await startDeliver(queue.dir, fleet.port, 2);
    await submitMany(port, 30);
    await until(() => counts(fleet).size === 30, 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect([...counts(fleet).values()]).toEqual(Array(30).fill(1));
  });
});
