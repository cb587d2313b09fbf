/** Runs Python's smtplib against a test server. CI installs python3 (see .ci/run). */
import { execFile } from 'node:child_process';

/** Runs a Python snippet with `PORT` set; resolves to its stdout. */
export function runPython(script: string, port: number, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', script], { env: { ...process.env, PORT: String(port) }, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python3 failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}
