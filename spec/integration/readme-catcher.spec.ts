/**
 * The README's API examples for the mail catcher, run as written (only the ports changed): each
 * curl command works, and what it prints is what the README says it is.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler } from '../../lib/index.js';
import { Controller } from '../../lib/entry/testing.js';
import { ROOT } from '../helpers/processes.js';

const MARKER = '<!-- spec/integration/readme-catcher.spec.ts runs this block as written, ports changed. -->';
const curl = ['/usr/bin/curl', '/bin/curl'].find((path) => existsSync(path));
if (curl === undefined) console.log('readme-catcher.spec: skipped: no curl (Debian: apt-get install curl)');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The shell block that follows the marker in the README. */
function block(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(MARKER);
  if (at < 0) throw new Error('README.md: the marker of the catcher API block is missing');
  const match = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (match?.[1] === undefined) throw new Error('README.md: no sh block after the marker');
  return match[1];
}

describe.skipIf(curl === undefined)("the README's catcher API examples", () => {
  it('run as written against a catcher, and do what their comments say', async () => {
    const catcher = new Controller(RequestHandler, { inbox: true });
    const target = new Controller(RequestHandler, { inbox: true });
    await catcher.start();
    await target.start();
    cleanups.push(
      () => catcher.stop(),
      () => target.stop(),
    );
    const http = await catcher.serveInbox();
    const script = block()
      .replaceAll('127.0.0.1:1025', `127.0.0.1:${catcher.port}`)
      .replaceAll('127.0.0.1:8025', `127.0.0.1:${http.address().port}`)
      .replaceAll('"port":2525', `"port":${target.port}`);
    const dir = mkdtempSync(join(tmpdir(), 'sirocco-readme-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], { cwd: dir, timeout: 30_000 });

    const released = await target.inbox.waitFor({ to: 'me@example.com' });
    // The last command deleted it from the catcher; the release kept its bytes.
    expect(catcher.inbox.messages).toEqual([]);
    expect(released.subject).toBe('Welcome');
    expect(released.attachments.map((a) => [a.filename, a.content.toString()])).toEqual([['invoice.txt', 'total: 10']]);
    expect(released.text).toBe('Hello Bob');
    // Saved by -OJ under the attachment's own name.
    expect(readFileSync(join(dir, 'invoice.txt'), 'utf8')).toBe('total: 10');
    expect(stdout).toContain('"subject":"Welcome"');
    expect(stdout).toContain(
      `{"faults":[{"at":"rcpt","reply":452,"drop":false,"delayMs":0,"recipient":"x@example.com","left":1}],"pending":1,"injected":0}`,
    );
    expect(stdout).toContain(`"to":["me@example.com"],"response":"250 2.0.0 Ok: queued as ${released.id}"}`);
  });
});
