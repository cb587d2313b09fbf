/**
 * What both bench scripts share: driving Postfix's smtp-source, and checking that the tools a
 * bench needs are installed.
 */
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';

/** Row (a)'s load, without the message count: 20 persistent sessions, 1 KiB messages. */
export const PERSISTENT_1KIB = ['-d', '-s', '20', '-l', '1024'];

/** The median of `values` (the middle two's mean for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

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

/** What {@link sendConcurrently} saw: the final reply of each message, by its code. */
export interface Outcome {
  readonly accepted: number;
  readonly refused452: number;
  readonly other: number;
  readonly seconds: number;
}

/**
 * Opens `connections` sessions at once, each sending one message of `size` bytes (lines of 1,000
 * characters) with DATA, and counts how the messages ended. Unlike smtp-source, a 452 is an
 * outcome to count, not a reason to stop.
 */
export async function sendConcurrently(port: number, connections: number, size: number): Promise<Outcome> {
  const started = process.hrtime.bigint();
  const line = Buffer.from(`${'x'.repeat(998)}\r\n`);
  const lines = Math.ceil(size / line.length);
  const chunk = Buffer.concat(Array.from({ length: 64 }, () => line));
  const codes = await Promise.all(Array.from({ length: connections }, () => sendOne(port, chunk, Math.ceil(lines / 64))));
  return {
    accepted: codes.filter((c) => c === 250).length,
    refused452: codes.filter((c) => c === 452).length,
    other: codes.filter((c) => c !== 250 && c !== 452).length,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}

function sendOne(port: number, chunk: Buffer, chunks: number): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const script = ['EHLO load.test', 'MAIL FROM:<bench@sender.test>', 'RCPT TO:<sink@bench.test>', 'DATA'];
    let step = -1;
    let text = '';
    const finish = (code: number): void => {
      socket.end('QUIT\r\n');
      resolve(code);
    };
    const sendBody = async (): Promise<void> => {
      for (let i = 0; i < chunks; i++) {
        if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
      }
      socket.write('.\r\n');
    };
    socket.on('error', () => resolve(0));
    socket.on('data', (data: Buffer) => {
      text += data.toString('latin1');
      // Whole replies only: the last line of a reply has a space after its code.
      for (let end = text.search(/^\d{3} .*\r\n/m); end !== -1; end = text.search(/^\d{3} .*\r\n/m)) {
        const stop = text.indexOf('\r\n', end) + 2;
        const code = Number(text.slice(end, end + 3));
        text = text.slice(stop);
        step++;
        if (step <= script.length && code >= 400) return finish(code);
        if (step < script.length) socket.write(`${script[step] ?? ''}\r\n`);
        else if (step === script.length) void sendBody();
        else return finish(code);
      }
    });
  });
}

/** Opens a connection, reads the greeting, sends EHLO, reads its reply, then stays idle. */
export function openIdle(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let sentEhlo = false;
    const timer = setTimeout(() => reject(new Error('idle connection setup timed out')), 20_000);
    socket.setEncoding('utf8');
    socket.on('error', reject);
    socket.on('data', (d: string) => {
      text += d;
      if (!sentEhlo && text.includes('\r\n')) {
        sentEhlo = true;
        text = '';
        socket.write('EHLO idle.test\r\n');
      } else if (sentEhlo && /^250 .*\r\n/m.test(text)) {
        clearTimeout(timer);
        socket.removeAllListeners('data');
        resolve(socket);
      }
    });
  });
}
