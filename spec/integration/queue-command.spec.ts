/** `sirocco --handler deliver:DIR` and `sirocco queue …`, run as an operator runs them. */
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Spool } from '../../lib/outbound/spool.js';
import { startDns, type TestDns } from '../helpers/dns.js';
import { plainTransport } from '../helpers/mailer.js';
import { tempQueue } from '../helpers/outbound.js';
import { startTsx, stopAll } from '../helpers/processes.js';
import { freePort, until } from '../helpers/server.js';

const CLI = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));
let dns: TestDns;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  // Nothing listens on 127.0.0.9: the message waits in the queue.
  dns = await startDns({ 'down.test': { a: ['127.0.0.9'] } });
});
afterAll(async () => {
  await dns.close();
});
afterEach(async () => {
  await stopAll();
  for (const c of cleanups.splice(0)) c();
});

/** Runs `sirocco ARGS` to its end: exit code, stdout, stderr. */
async function sirocco(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const run = startTsx([CLI, ...args]);
  const code = await run.exited;
  return { code, out: run.stdout(), err: run.stderr() };
}

describe('sirocco queue', () => {
  it('lists, shows, retries and deletes what a deliver server queued', async () => {
    const queue = tempQueue();
    cleanups.push(queue.cleanup);
    const port = await freePort();
    const server = startTsx([
      CLI,
      '--listen',
      `127.0.0.1:${port}`,
      '--hostname',
      'mta.test',
      '--handler',
      `deliver:${queue.dir}`,
      '--set',
      `dnsServers=["${dns.server}"]`,
      '--set',
      `deliveryPort=${port}`,
      '--set',
      'retrySchedule=[3600]',
      '--set',
      'deliveryConnectTimeout=1000',
    ]);
    await until(() => server.stdout().includes('serving deliver:'), 15_000);
    const transport = plainTransport(port);
    const info = await transport.sendMail({ envelope: { from: 'a@sender.test', to: ['b@down.test'] }, raw: 'Subject: stuck\r\n\r\nx\r\n' });
    transport.close();
    const id = /queued as ([a-z0-9]+)/.exec(info.response)?.[1] ?? '';
    expect(id).not.toBe('');

    let list = await sirocco(['queue', 'list', queue.dir]);
    for (let i = 0; i < 50 && !list.out.includes('waiting until'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      list = await sirocco(['queue', 'list', queue.dir]);
    }
    expect(list.code).toBe(0);
    expect(list.out).toMatch(
      new RegExp(`^${id}  waiting until \\S+  attempts 1  age 0 min  <a@sender\\.test> -> b@down\\.test\\n1 message in the queue\\n$`),
    );

    const show = await sirocco(['queue', 'show', queue.dir, id]);
    expect(show.code).toBe(0);
    expect(show.out).toContain('from:      <a@sender.test>\n');
    expect(show.out).toMatch(/to: {8}<b@down\.test> pending: down\.test: 451 4\.4\.1 down\.test \[127\.0\.0\.9\]: /);
    expect(show.out).toContain('Subject: stuck');

    const retry = await sirocco(['queue', 'retry', queue.dir, id]);
    expect(retry).toMatchObject({ code: 0, out: `${id}: due now\n` });

    server.child.kill('SIGTERM');
    await server.exited;
    const removed = await sirocco(['queue', 'delete', queue.dir, id]);
    expect(removed).toMatchObject({ code: 0, out: `${id}: deleted\n` });
    expect((await sirocco(['queue', 'list', queue.dir])).out).toBe('0 messages in the queue\n');
  }, 60_000); // Several processes of the command, each starting tsx: a loaded machine needs the time.

  it('says what is wrong: an unknown command, a folder that is no queue, an unknown id', async () => {
    const queue = tempQueue();
    cleanups.push(queue.cleanup);
    expect(await sirocco(['queue', 'purge', queue.dir])).toMatchObject({
      code: 2,
      err: 'sirocco queue: unknown command "purge": expected list, show, retry or delete (see sirocco queue --help)\n',
    });
    expect(await sirocco(['queue', 'list', queue.dir])).toMatchObject({
      code: 1,
      err: `sirocco queue: ${queue.dir} is not a queue folder (it has no queue/ and data/)\n`,
    });
    new Spool(queue.dir);
    expect(await sirocco(['queue', 'show', queue.dir, 'abcdefgh1234'])).toMatchObject({
      code: 1,
      err: `sirocco queue show: no message abcdefgh1234 in ${queue.dir}\n`,
    });
    expect(await sirocco(['queue', 'delete', queue.dir, 'abcdefgh1234'])).toMatchObject({
      code: 1,
      err: 'abcdefgh1234: no such message\n',
    });
    expect(await sirocco(['queue', 'show'])).toMatchObject({
      code: 2,
      err: 'sirocco queue show: QUEUE_DIR is missing (see sirocco queue --help)\n',
    });
  }, 60_000);
});
