/** Every example runs as a user would run it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { runPython } from '../helpers/python.js';
import { until } from '../helpers/server.js';

let child: ChildProcess | undefined;

afterEach(async () => {
  const running = child;
  child = undefined;
  if (running?.exitCode === null && running.pid !== undefined) {
    const exited = new Promise((r) => running.once('exit', r));
    process.kill(running.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  }
});

describe('examples/example-com.ts (npm start)', () => {
  it('accepts mail for example.com, prints it, refuses other domains, stops on SIGTERM', async () => {
    const script = fileURLToPath(new URL('../../examples/example-com.ts', import.meta.url));
    const proc = spawn(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, PORT: '0', SIROCCO_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child = proc;
    let out = '';
    proc.stdout?.setEncoding('utf8').on('data', (t: string) => (out += t));
    await until(() => /127\.0\.0\.1:(\d+)/.test(out), 15_000);
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
    const result = await runPython(
      `
import os, smtplib
s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']), timeout=10)
print(s.sendmail('me@sender.test', ['you@example.com', 'them@elsewhere.test'], 'Subject: hello\\r\\n\\r\\nHi there\\r\\n'))
s.quit()
`,
      port,
    );
    expect(result.trim()).toBe("{'them@elsewhere.test': (550, b'5.7.1 not relaying to that domain')}");
    await until(() => out.includes('end of message'));
    expect(out).toMatch(/---------- message [0-9A-Z]{12} ----------\nFrom: <me@sender\.test>\nTo: <you@example\.com>\nPeer: 127\.0\.0\.1 \(\S+\)\n\nSubject: hello\n\nHi there\n---------- end of message [0-9A-Z]{12} ----------\n/);
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    process.kill(proc.pid ?? 0, 'SIGTERM');
    expect(await exited).toBe(0);
  });
});
