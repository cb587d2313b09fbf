/**
 * Per-client limits shared through a real Redis (Debian's redis-server, started by the test on
 * loopback and stopped by its pid): two stores as two hosts, a host killed with `kill -9`, Redis
 * stopped and started again under a serving server, and two `sirocco` processes sharing one cap.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Application, RedisLimitStore, RequestHandler, type AuthCredentials } from '../../lib/index.js';
import { Deliver, deliveryQueue } from '../../lib/entry/outbound.js';
import { startDns } from '../helpers/dns.js';
import { tempQueue } from '../helpers/outbound.js';
import { makeCertificates } from '../helpers/certs.js';
import { ROOT, startTsx, stopAll } from '../helpers/processes.js';
import { Pop3Client } from '../helpers/pop3-client.js';
import { RawClient } from '../helpers/raw-client.js';
import { redisMissing, startRedis, type TestRedis } from '../helpers/redis.js';
import { closeServers, silent, startServer, until } from '../helpers/server.js';

if (redisMissing !== undefined) console.log(`Redis limit tests skipped: ${redisMissing}`);

let redis: TestRedis;
let prefixes = 0;
const stores: RedisLimitStore[] = [];

beforeAll(async () => {
  if (redisMissing === undefined) redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});
afterEach(async () => {
  await closeServers();
  await stopAll();
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

/** A store on the test's Redis, under a prefix of this test's own. */
function store(prefix: string, options: { leaseMs?: number; timeoutMs?: number; failClosed?: boolean } = {}): RedisLimitStore {
  const made = new RedisLimitStore({ url: redis.url, prefix, ...options });
  stores.push(made);
  return made;
}

function prefix(): string {
  return `t${process.pid}-${++prefixes}:`;
}

const CLIENT_LIMIT = '421 4.7.0 Too many connections from your address, try again later\r\n';

describe('sirocco --limit-store', () => {
  it.each([
    [
      'http://127.0.0.1:6379',
      'sirocco: --limit-store: RedisLimitStore: url must start with redis:// or rediss://, got http:// (see --help)\n',
    ],
    ['redis://127.0.0.1:6379?fail=maybe', 'sirocco: --limit-store: fail must be open or closed, got "maybe" (see --help)\n'],
    [
      'redis://127.0.0.1:6379?lease=soon',
      'sirocco: --limit-store: lease must be a whole number of milliseconds, got "soon" (see --help)\n',
    ],
    ['redis://127.0.0.1:6379?colour=red', 'sirocco: --limit-store: unknown parameter colour (prefix, lease, timeout, fail) (see --help)\n'],
    [
      'redis://127.0.0.1:6379?lease=10',
      'sirocco: --limit-store: RedisLimitStore: leaseMs must be a whole number of at least 1000 (see --help)\n',
    ],
  ])('refuses %s with one line and exit 2', async (url, line) => {
    const r = startTsx(['lib/cli/main.ts', '--limit-store', url]);
    expect(await r.exited).toBe(2);
    expect(r.stderr()).toBe(line);
  });

  it('a bad setting beside it still exits (the store it made is closed), and --check-config masks the password', async () => {
    const bad = startTsx(['lib/cli/main.ts', '--limit-store', 'redis://127.0.0.1:1', '--set', 'maxRecipients=0']);
    expect(await bad.exited).toBe(2);
    const dir = mkdtempSync(join(tmpdir(), 'sirocco-limits-'));
    try {
      writeFileSync(join(dir, 'c.yaml'), 'handler: sink\nlimit-store: "redis://:secret@127.0.0.1:1/0?prefix=eu:&fail=closed"\n');
      const check = startTsx(['lib/cli/main.ts', '--config', join(dir, 'c.yaml'), '--check-config']);
      expect(await check.exited).toBe(0);
      expect(check.stdout()).toContain('  limitStore: redis://:****@127.0.0.1:1/0?prefix=eu:&lease=30000&timeout=250&fail=closed\n');
      expect(check.stdout()).not.toContain('secret');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(redisMissing !== undefined)('RedisLimitStore', () => {
  it('two hosts share open counts and event windows; nothing is left behind', async () => {
    const p = prefix();
    const a = store(p);
    const b = store(p);
    expect(await a.acquire('ip:192.0.2.7')).toBe(1);
    expect(await b.acquire('ip:192.0.2.7')).toBe(2);
    expect(await a.acquire('ip:192.0.2.7')).toBe(3);
    await b.release('ip:192.0.2.7');
    expect(await b.acquire('ip:192.0.2.7')).toBe(3);
    expect(await a.hit('authfail:192.0.2.7', 60_000)).toBe(1);
    expect(await b.hit('authfail:192.0.2.7', 60_000)).toBe(2);
    expect(await a.count('authfail:192.0.2.7', 60_000)).toBe(2);
    expect(await b.count('authfail:198.51.100.1', 60_000)).toBe(0);
    for (const s of [a, a, b]) await s.release('ip:192.0.2.7');
    const raw = new Redis(redis.url);
    try {
      const keys = (await raw.keys(`${p}*`)).sort();
      expect(keys).toEqual([`${p}events:authfail:192.0.2.7`, `${p}hosts`]);
      for (const key of keys) expect(await raw.pttl(key)).toBeGreaterThan(0);
    } finally {
      raw.disconnect();
    }
    expect(a.fallbacks).toBe(0);
  });

  it('a host killed with kill -9 stops holding its connections within the lease', async () => {
    const p = prefix();
    const script = `
      const { RedisLimitStore } = await import('./lib/index.ts');
      const s = new RedisLimitStore({ url: ${JSON.stringify(redis.url)}, prefix: ${JSON.stringify(p)}, leaseMs: 1000 });
      await s.acquire('ip:203.0.113.9');
      await s.acquire('ip:203.0.113.9');
      console.log('held');
      setInterval(() => undefined, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await until(() => out.includes('held'), 15_000);
      const survivor = store(p, { leaseMs: 1000 });
      expect(await survivor.acquire('ip:203.0.113.9')).toBe(3);
      process.kill(child.pid ?? 0, 'SIGKILL');
      await exited;
      await new Promise((r) => setTimeout(r, 1300));
      expect(await survivor.acquire('ip:203.0.113.9')).toBe(2);
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid ?? 0, 'SIGKILL');
    }
  });
});

describe.skipIf(redisMissing !== undefined)('RedisLimitStore over TLS, with a password', () => {
  it('counts in a Redis that takes rediss:// and AUTH only; a wrong password is a fallback, not a crash', async () => {
    const certs = makeCertificates();
    const secured = await startRedis({
      tls: { certFile: join(certs.dir, 'server.crt'), keyFile: join(certs.dir, 'server.key'), caFile: certs.caFile },
      password: 'pass-7',
    });
    try {
      expect(secured.url).toBe(`rediss://:pass-7@127.0.0.1:${secured.port}`);
      const p = prefix();
      const a = new RedisLimitStore({ url: secured.url, prefix: p, tls: { ca: certs.ca } });
      const b = new RedisLimitStore({ url: secured.url, prefix: p, tls: { ca: certs.ca } });
      const wrong = new RedisLimitStore({
        url: `rediss://:nope@127.0.0.1:${secured.port}`,
        prefix: p,
        tls: { ca: certs.ca },
        timeoutMs: 300,
      });
      stores.push(a, b, wrong);
      expect(await a.acquire('ip:192.0.2.1')).toBe(1);
      expect(await b.acquire('ip:192.0.2.1')).toBe(2);
      expect(await wrong.acquire('ip:192.0.2.1')).toBe(1);
      expect([a.fallbacks, b.fallbacks, wrong.fallbacks]).toEqual([0, 0, 1]);
    } finally {
      await secured.close();
      certs.cleanup();
    }
  });
});

describe.skipIf(redisMissing !== undefined)('shared limits on real servers', () => {
  it('the AUTH-failure limit holds across two servers: a client gets N guesses in all, not 2N', async () => {
    const p = prefix();
    const authenticate = (_c: AuthCredentials): boolean => false;
    const settings = { authenticate, allowInsecureAuth: true, authFailuresPerIp: 2, limitExempt: [] };
    const a = await startServer(RequestHandler, { ...settings, limitStore: store(p) });
    const b = await startServer(RequestHandler, { ...settings, limitStore: store(p) });
    const guess = `AUTH PLAIN ${Buffer.from('\0alice\0guess').toString('base64')}`;
    const first = await RawClient.ehlo(a.port);
    expect(await first.command(guess)).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    const second = await RawClient.ehlo(b.port);
    expect(await second.command(guess)).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    const third = await RawClient.ehlo(a.port);
    expect(await third.command(guess)).toBe('454 4.7.0 Too many authentication failures from your address, try again later\r\n');
    for (const c of [first, second, third]) c.close();
  });

  it('Redis stopped: the server keeps serving (fail open) and the metric counts it; restarted: the counts are shared again', async () => {
    const p = prefix();
    const shared = store(p, { timeoutMs: 200 });
    const { server, port } = await startServer(RequestHandler, {
      limitStore: shared,
      limitExempt: [],
      maxConnectionsPerIp: 5,
      metricsListen: '127.0.0.1:0',
    });
    const before = await RawClient.greeted(port);
    const other = store(p);
    expect(await other.acquire('ip:127.0.0.1')).toBe(2);
    await other.release('ip:127.0.0.1');
    await redis.stop();
    try {
      const during = await RawClient.greeted(port);
      const metrics = await (await fetch(`http://127.0.0.1:${server.metricsAddress()?.port ?? 0}/metrics`)).text();
      expect(Number(/^sirocco_limit_store_fallbacks_total (\d+)$/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThanOrEqual(1);
      during.close();
    } finally {
      await redis.restart();
    }
    // The client reconnects on its own (within about two seconds); then the counts are Redis's again.
    let seen = 0;
    for (let attempt = 0; attempt < 50 && seen < 2; attempt++) {
      await new Promise((r) => setTimeout(r, 200));
      const probe = await RawClient.greeted(port);
      seen = await other.acquire('ip:127.0.0.1');
      await other.release('ip:127.0.0.1');
      probe.close();
    }
    expect(seen).toBeGreaterThanOrEqual(2);
    before.close();
  });

  it('fail closed: while Redis is away every new client is refused', async () => {
    const p = prefix();
    const { port } = await startServer(RequestHandler, { limitStore: store(p, { timeoutMs: 200, failClosed: true }), limitExempt: [] });
    (await RawClient.greeted(port)).close();
    await redis.stop();
    try {
      const refused = await RawClient.connect(port);
      expect(await refused.reply()).toBe(CLIENT_LIMIT);
      refused.close();
    } finally {
      await redis.restart();
    }
  });

  it('two sirocco processes share the password-failure limit: POP3 guesses on both hosts count together', async () => {
    const p = prefix();
    const dir = mkdtempSync(join(tmpdir(), 'sirocco-limits-'));
    try {
      writeFileSync(join(dir, 'users'), 'alice:wonderland\n');
      const serve = async (): Promise<number> => {
        const r = startTsx([
          'lib/cli/main.ts',
          '--listen',
          '127.0.0.1:0',
          '--handler',
          `maildir:${join(dir, 'mail')}`,
          '--pop3-listen',
          '127.0.0.1:0',
          '--pop3-users',
          join(dir, 'users'),
          '--limit-store',
          `${redis.url}?prefix=${p}`,
          '--set',
          'authFailuresPerIp=2',
          '--set',
          'limitExempt=[]',
          '--set',
          'allowInsecureAuth=true',
        ]);
        await until(() => /serving POP3 on 127\.0\.0\.1:\d+/.test(r.stdout()) || r.child.exitCode !== null, 15_000);
        const port = Number(/serving POP3 on 127\.0\.0\.1:(\d+)/.exec(r.stdout())?.[1] ?? 0);
        if (port === 0) throw new Error(`did not start: ${r.stderr()}`);
        return port;
      };
      const [one, two] = await Promise.all([serve(), serve()]);
      const guess = async (port: number): Promise<string> => {
        const c = await Pop3Client.connect(port);
        await c.until('\r\n');
        expect(await c.command('USER alice')).toBe('+OK Send the password for alice\r\n');
        const answer = await c.command('PASS guess');
        c.socket.destroy();
        return answer;
      };
      expect(await guess(one)).toBe('-ERR [AUTH] Invalid user name or password\r\n');
      expect(await guess(two)).toBe('-ERR [AUTH] Invalid user name or password\r\n');
      expect(await guess(one)).toBe('-ERR [AUTH] Too many authentication failures from your address, try again later\r\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('two sirocco processes share one per-IP cap; killing one frees its slot within the lease', async () => {
    const p = prefix();
    const serve = async (): Promise<{ port: number; pid: number }> => {
      const r = startTsx([
        'lib/cli/main.ts',
        '--listen',
        '127.0.0.1:0',
        '--handler',
        'sink',
        '--limit-store',
        `${redis.url}?prefix=${p}&lease=1000`,
        '--set',
        'maxConnectionsPerIp=2',
        '--set',
        'limitExempt=[]',
      ]);
      await until(() => /serving .* on 127\.0\.0\.1:\d+/.test(r.stdout()) || r.child.exitCode !== null, 15_000);
      const port = Number(/ on 127\.0\.0\.1:(\d+)/.exec(r.stdout())?.[1] ?? 0);
      if (port === 0) throw new Error(`did not start: ${r.stderr()}`);
      return { port, pid: r.child.pid ?? 0 };
    };
    const [one, two] = await Promise.all([serve(), serve()]);
    const atOne = await RawClient.greeted(one.port);
    const atTwo = await RawClient.greeted(two.port);
    const third = await RawClient.connect(one.port);
    expect(await third.reply()).toBe(CLIENT_LIMIT);
    third.close();
    process.kill(one.pid, 'SIGKILL');
    atOne.close();
    // Right after the kill its connection still counts; within the lease (1 s) it does not.
    const early = await RawClient.connect(two.port);
    expect(await early.reply()).toBe(CLIENT_LIMIT);
    early.close();
    await new Promise((r) => setTimeout(r, 1300));
    const later = await RawClient.greeted(two.port);
    later.close();
    atTwo.close();
  });
});

describe.skipIf(redisMissing !== undefined)('Deliver paced across hosts', () => {
  /** Two Deliver applications (two hosts) with 3 messages each for one destination; the most connections the exchanger had at once. */
  async function mostAtOnce(shared: boolean, ratePerDomain = 0, settle?: number): Promise<{ most: number; arrived: number }> {
    let open = 0;
    let most = 0;
    let arrived = 0;
    class Slow extends RequestHandler {
      override async prepare(): Promise<void> {
        most = Math.max(most, ++open);
        await new Promise((r) => setTimeout(r, 150));
      }
      override data(): void {
        arrived++;
      }
      override onFinish(): void {
        open--;
      }
    }
    const exchanger = await startServer(Slow);
    const dns = await startDns({ 'paced.test': { mx: [[10, 'mx.paced.test']] }, 'mx.paced.test': { a: ['127.0.0.1'] } });
    const p = prefix();
    const closers: (() => unknown)[] = [() => dns.close()];
    try {
      for (let host = 0; host < 2; host++) {
        const queue = tempQueue();
        closers.push(queue.cleanup);
        const app = new Application(Deliver, {
          hostname: `mta${host}.test`,
          queueDir: queue.dir,
          dnsServers: [dns.server],
          deliveryPort: exchanger.port,
          deliveryConcurrencyPerDomain: 1,
          deliverySharedPacing: shared,
          deliveryRatePerDomain: ratePerDomain,
          queueScanInterval: 100,
          limitStore: store(p),
          logger: silent,
        });
        for (let i = 0; i < 3; i++) {
          await deliveryQueue(app).enqueue(
            { from: 'a@sender.test', recipients: [{ address: `r${i}@paced.test` }] },
            Buffer.from('Subject: x\r\n\r\nx\r\n'),
          );
        }
        const server = await app.listen(0, '127.0.0.1');
        closers.push(() => server.close());
      }
      if (settle === undefined) await until(() => arrived === 6, 20_000);
      else await new Promise((r) => setTimeout(r, settle));
      return { most, arrived };
    } finally {
      for (const close of closers.reverse()) await close();
    }
  }

  it('deliverySharedPacing: the fleet opens deliveryConcurrencyPerDomain connections to a destination in all', async () => {
    expect((await mostAtOnce(false)).most).toBe(2);
    expect((await mostAtOnce(true)).most).toBe(1);
  });

  it('deliveryRatePerDomain: two messages a minute per destination, per host alone or for the whole fleet', async () => {
    expect((await mostAtOnce(false, 2, 2500)).arrived).toBe(4);
    expect((await mostAtOnce(true, 2, 2500)).arrived).toBe(2);
  });
});
