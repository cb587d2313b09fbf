/** What the fuzzing suites share: send input cut at random points, then a probe, and read what came back. */
import { connect } from 'node:net';
import { cutAt } from './splits.js';

/**
 * Sends `input` to `port` cut at `cuts` (a turn of the event loop between pieces), then `probe`;
 * resolves once `answered(text)` holds, the server closed, or 5 s passed.
 */
export async function exchange(
  port: number,
  input: Buffer,
  cuts: number[],
  probe: string,
  answered: (text: string) => boolean,
): Promise<{ text: string; closed: boolean }> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  for (const part of cutAt(input, cuts)) {
    if (closed) break;
    socket.write(part);
    await new Promise((r) => setImmediate(r));
  }
  if (!closed) socket.write(probe);
  const deadline = Date.now() + 5000;
  while (!closed && !answered(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  socket.destroy();
  return { text, closed };
}
