/**
 * What both bench scripts share: driving Postfix's smtp-source, and checking that the tools a
 * bench needs are installed.
 */
import { execFile } from 'node:child_process';

/** Row (a)'s load, without the message count: 20 persistent sessions, 1 KiB messages. */
export const PERSISTENT_1KIB = ['-d', '-s', '20', '-l', '1024'];

/** Runs smtp-source against 127.0.0.1:`port`; resolves to its wall time in seconds. */
export function smtpSource(port: number, options: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    execFile(
      'smtp-source',
      [...options, '-f', 'bench@sender.test', '-t', 'sink@bench.test', `127.0.0.1:${port}`],
      { timeout: 300_000 },
      (err, _out, stderr) => {
        if (err) reject(new Error(`smtp-source failed: ${err.message} ${stderr}`));
        else resolve(Number(process.hrtime.bigint() - started) / 1e9);
      },
    );
  });
}

/** Fails with `hint` unless every command in `tools` is on the PATH. */
export async function requireTools(tools: readonly string[], hint: string): Promise<void> {
  for (const tool of tools) {
    await new Promise<void>((resolve, reject) =>
      execFile('sh', ['-c', `command -v ${tool}`], (err) => (err ? reject(new Error(`${tool} not found: ${hint}`)) : resolve())),
    );
  }
}
