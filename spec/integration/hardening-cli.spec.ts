/**
 * The command line an operator meets: a bad option stops the command before anything listens
 * (one line, exit 2), a folder the handler cannot write is found at start, a Unix socket left by
 * a killed process does not block the restart, and --metrics-listen binds where --help says.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { metricsAddress } from '../../lib/server/metrics.js';
import { startTsx, stopAll } from '../helpers/processes.js';
import { RawClient } from '../helpers/raw-client.js';
import { freePort, until } from '../helpers/server.js';

const CLI = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));
const dirs: string[] = [];
afterEach(async () => {
  await stopAll();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sirocco-cli-hard-'));
  dirs.push(dir);
  return dir;
}

/** Whether something accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

describe('a bad start stops before listening: one line, exit 2', () => {
  it.each([
    [
      'a missing --pop3-users file',
      (dir: string) => ['--pop3-listen', '127.0.0.1:0', '--pop3-users', join(dir, 'nope'), '--handler', `maildir:${dir}/m`],
    ],
    [
      'a malformed --pop3-users file',
      (dir: string) => {
        writeFileSync(join(dir, 'users'), 'alice\n');
        return ['--pop3-listen', '127.0.0.1:0', '--pop3-users', join(dir, 'users'), '--handler', `maildir:${dir}/m`];
      },
    ],
    [
      'maildir:DIR under a regular file',
      (dir: string) => {
        writeFileSync(join(dir, 'file'), 'x');
        return ['--handler', `maildir:${dir}/file/mail`];
      },
    ],
    ['maildir:/proc/nope', () => ['--handler', 'maildir:/proc/nope']],
    ['deliver:DIR under a regular file', (dir: string) => (writeFileSync(join(dir, 'f'), 'x'), ['--handler', `deliver:${dir}/f/q`])],
  ])('%s', async (_name, argsOf) => {
    const port = await freePort();
    const r = startTsx([CLI, '--listen', `127.0.0.1:${port}`, ...argsOf(tempDir())]);
    expect(await r.exited).toBe(2);
    const lines = r.stderr().trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^sirocco: --(pop3-users|handler) .*\(see --help\)$|^sirocco: --pop3-users: .*\(see --help\)$/);
    expect(r.stdout()).not.toContain('serving');
    expect(await listening(port)).toBe(false);
  });
});

describe('--set with a mistyped setting name', () => {
  it('names the setting it was meant to be, exits 2 and listens nowhere', async () => {
    const port = await freePort();
    const r = startTsx([CLI, '--listen', `127.0.0.1:${port}`, '--set', 'hostnam="mx.test"', '--set', 'maxRecipient=5']);
    expect(await r.exited).toBe(2);
    expect(r.stderr()).toBe(
      'sirocco: Invalid settings: hostnam: unknown setting, did you mean hostname?; maxRecipient: unknown setting, did you mean maxRecipients? (see --help)\n',
    );
    expect(await listening(port)).toBe(false);
  });
});

describe('Unix sockets', () => {
  it('a socket file left by a killed process is removed at start; a live one is not; the mode is set', async () => {
    const dir = tempDir();
    const path = join(dir, 'smtp.sock');
    // A socket file nobody listens on, as kill -9 leaves it.
    execFileSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(path)})`]);
    expect(statSync(path).isSocket()).toBe(true);
    const r = startTsx([CLI, '--listen', path, '--handler', 'sink', '--socket-mode', '660']);
    await until(() => r.stdout().includes('serving') || r.child.exitCode !== null, 15_000);
    expect(r.stderr()).toBe('');
    expect(statSync(path).mode & 0o777).toBe(0o660);
    const c = await RawClient.greeted(path);
    expect(await c.command('QUIT')).toBe('221 2.0.0 Bye\r\n');
    // A second server on the live socket is refused, and the first one keeps its file.
    const second = startTsx([CLI, '--listen', path, '--handler', 'sink']);
    expect(await second.exited).toBe(1);
    expect(second.stderr()).toMatch(/EADDRINUSE/);
    const again = await RawClient.greeted(path);
    again.close();
  });
});

describe('--metrics-listen', () => {
  it('a bare port is 127.0.0.1 only; :PORT is every interface, as for --listen', () => {
    expect(metricsAddress('9100')).toEqual({ host: '127.0.0.1', port: 9100 });
    expect(metricsAddress(':9100')).toEqual({ host: '', port: 9100 });
    expect(metricsAddress('[::1]:9100')).toEqual({ host: '::1', port: 9100 });
    expect(metricsAddress('0.0.0.0:9100')).toEqual({ host: '0.0.0.0', port: 9100 });
  });
});
