/** Child processes a test starts: output collected, and ended by their own pid afterwards. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The project root, where npm runs its scripts. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Started {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** Runs `node --import tsx ARGS` from the project root, as `npm` runs `tsx`. */
export function startTsx(args: readonly string[], env: Record<string, string> = {}): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: { ...process.env, SIROCCO_LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (t: string) => (out += t));
  child.stderr?.setEncoding('utf8').on('data', (t: string) => (err += t));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Sends SIGTERM and resolves to the exit code. */
export async function terminate(started: Started): Promise<number | null> {
  if (started.child.pid !== undefined && started.child.exitCode === null && started.child.signalCode === null) {
    process.kill(started.child.pid, 'SIGTERM');
  }
  return started.exited;
}

/** Ends every process started here that still runs (call in afterEach); waits at most 5 s. */
export async function stopAll(): Promise<void> {
  const children = [...running];
  running.clear();
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }),
  );
}
