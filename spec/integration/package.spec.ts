/**
 * The package as users get it: `npm pack`, installed into a fresh project (production
 * dependencies only, as any dependency is installed), then a user's TypeScript program compiled
 * against it with `skipLibCheck: false` and run (every entry point, a Controller with an inbox, a
 * Relay and sendDirect on loopback), and the installed `sirocco` binary started.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDns, type TestDns } from '../helpers/dns.js';
import { ROOT } from '../helpers/processes.js';
import { RawClient } from '../helpers/raw-client.js';
import { freePort } from '../helpers/server.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/installed/', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const NPM_ENV = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

let dir: string;
let project: string;
let dns: TestDns;

function run(command: string, args: readonly string[], cwd: string, timeout = 240_000): string {
  return execFileSync(command, args, { cwd, env: NPM_ENV, timeout, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The greeting of a server that may still be starting: tries every 100 ms, for at most `ms`. */
async function greetingOn(port: number, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const client = await RawClient.connect(port);
      const greeting = await client.reply();
      client.close();
      return greeting;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sirocco-package-'));
  project = join(dir, 'app');
  mkdirSync(project);
  // prepare builds dist/ from lib/ first, as it does for a publish.
  run('npm', ['pack', '--pack-destination', dir], ROOT);
  const tarball = readdirSync(dir).find((f) => /^sirocco-.*\.tgz$/.test(f));
  if (tarball === undefined) throw new Error('npm pack made no tarball');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  run('npm', ['install', '--omit=dev', '--prefer-offline', '--no-package-lock', join(dir, tarball)], project);
  for (const f of ['app.ts', 'wrong.ts']) copyFileSync(join(FIXTURES, f), join(project, f));
  const compilerOptions = {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    skipLibCheck: false,
    types: ['node'],
  };
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['app.ts'] }));
  writeFileSync(
    join(project, 'tsconfig.wrong.json'),
    JSON.stringify({ compilerOptions: { ...compilerOptions, noEmit: true }, files: ['wrong.ts'] }),
  );
  dns = await startDns({ 'pkg.test': { mx: [[10, 'mx.pkg.test']] }, 'mx.pkg.test': { a: ['127.0.0.1'] } });
}, 300_000);

afterAll(async () => {
  await dns?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('the packed tarball, installed with production dependencies', () => {
  it('installs only what lib/ needs, with its declarations and no source maps', () => {
    const listed = JSON.parse(run('npm', ['ls', '--omit=dev', '--json'], project)) as { dependencies: Record<string, unknown> };
    expect(Object.keys(listed.dependencies)).toEqual(['sirocco']);
    const shipped = readdirSync(join(project, 'node_modules/sirocco/dist/lib/entry')).sort();
    expect(shipped).toEqual(['outbound.d.ts', 'outbound.js', 'pop3.d.ts', 'pop3.js', 'testing.d.ts', 'testing.js']);
    // The JavaScript is bundled (scripts/bundle.mjs): the entry points and a few shared chunks,
    // not one module per source file; the declarations stay one per source file.
    const lib = join(project, 'node_modules/sirocco/dist/lib');
    const files = readdirSync(lib, { recursive: true }).map(String);
    const javascript = files.filter((f) => f.endsWith('.js'));
    expect(javascript.filter((f) => !f.startsWith('chunks/')).sort()).toEqual([
      'cli/main.js',
      'entry/outbound.js',
      'entry/pop3.js',
      'entry/testing.js',
      'index.js',
    ]);
    expect(javascript.length).toBeLessThanOrEqual(20);
    expect(files).toContain('server/connection.d.ts');
    expect(readdirSync(join(project, 'node_modules/sirocco')).sort()).toEqual([
      'LICENSE',
      'README.md',
      'dist',
      'package.json',
      'sirocco.example.yaml',
      'web',
    ]);
  });

  it('compiles a handler strictly with skipLibCheck false, and the parsed message is typed', () => {
    expect(run(process.execPath, [TSC, '-p', 'tsconfig.json'], project, 120_000)).toBe('');
    let errors = '';
    try {
      run(process.execPath, [TSC, '-p', 'tsconfig.wrong.json'], project, 120_000);
    } catch (err) {
      errors = String((err as { stdout?: string }).stdout);
    }
    expect(errors.trim()).toBe("wrong.ts(7,12): error TS2339: Property 'thisDoesNotExist' does not exist on type 'ParsedMail'.");
  }, 240_000);

  it('runs it: sendDirect to a Relay, the Relay to a Controller, the inbox catches it; POP3 listens', async () => {
    // Not execFileSync: the DNS server answering it runs in this process.
    const { stdout } = await promisify(execFile)(process.execPath, ['app.js'], {
      cwd: project,
      timeout: 60_000,
      env: { ...process.env, DNS_SERVER: dns.server, MAILDIR: join(dir, 'mail') },
    });
    expect(JSON.parse(stdout.trim())).toEqual({
      sent: ['ann@pkg.test 250 2.0.0'],
      caught: { subject: 'from the tarball', from: 'app@sender.pkg.test', to: ['ann@pkg.test'], text: 'hello\n' },
      pop3Listening: true,
    });
  }, 60_000);

  it('runs the installed sirocco binary, which greets and stops on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(
      join(project, 'node_modules/.bin/sirocco'),
      ['--listen', `127.0.0.1:${port}`, '--handler', 'sink', '--hostname', 'pkg.test'],
      {
        cwd: project,
        env: { ...process.env, SIROCCO_LOG_LEVEL: 'silent' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      expect(await greetingOn(port, 15_000)).toMatch(/^220 pkg\.test ESMTP/);
    } finally {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 30_000);

  it('runs the installed sirocco catch, whose web view comes from the package', async () => {
    const [smtp, http] = [await freePort(), await freePort()];
    const child = spawn(
      join(project, 'node_modules/.bin/sirocco'),
      ['catch', '--smtp', `127.0.0.1:${smtp}`, '--http', `127.0.0.1:${http}`],
      {
        cwd: project,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      expect(await greetingOn(smtp, 15_000)).toMatch(/^220 /);
      const page = await fetch(`http://127.0.0.1:${http}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>Sirocco catcher</title>');
      const script = await fetch(`http://127.0.0.1:${http}/assets/app.js`);
      expect([script.status, script.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8']);
    } finally {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 30_000);
});
