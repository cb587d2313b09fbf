/**
 * Lent chunks (`this.request.lentChunks()`): the message read through memory the server reuses
 * once the reader has moved on. What matters is that reuse never shows: every chunk keeps its
 * bytes until the reader asks for the next one, across DATA and BDAT, pipelined commands after
 * the message, slow readers and a reader that starts late; and that the same few buffers carry a
 * message of any size.
 */
import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageAbortedError, MessageTooBigError, RequestHandler, type HandlerClass } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer, until } from '../helpers/server.js';

afterEach(closeServers);

const QUEUED = /^250 2\.0\.0 Ok: queued as [0-9A-Z]{12}\r\n$/;

interface Reading {
  /** Copies of the chunks, taken as each arrived. */
  copies: Buffer[];
  /** Chunks whose bytes changed while the reader still held them. */
  overwritten: number;
  /** Distinct memory the chunks came in. */
  backings: Set<ArrayBufferLike>;
  messages: number;
  error: unknown;
}

function newReading(): Reading {
  return { copies: [], overwritten: 0, backings: new Set(), messages: 0, error: undefined };
}

/**
 * A handler that reads lent chunks and, for each, yields to the event loop `pause` times before
 * checking that the chunk still holds the bytes it came with: a buffer reused too early would
 * have been read into meanwhile.
 */
function lendingHandler(seen: Reading, pause = 1, startLate = false): HandlerClass {
  return class Lending extends RequestHandler {
    static override streaming = true;
    override async data(): Promise<void> {
      if (startLate) await new Promise((r) => setTimeout(r, 50));
      try {
        for await (const chunk of this.request.lentChunks()) {
          const copy = Buffer.from(chunk);
          seen.copies.push(copy);
          seen.backings.add(chunk.buffer);
          for (let i = 0; i < pause; i++) await tick();
          if (!chunk.equals(copy)) seen.overwritten++;
        }
        seen.messages++;
      } catch (err) {
        seen.error = err;
        throw err;
      }
    }
  };
}

/** A body of `lines` lines of varied length, a third of them starting with a dot, and what the handler must read. */
function dottedBody(lines: number, seed: number): { wire: Buffer; decoded: Buffer } {
  const wire: string[] = [];
  const decoded: string[] = [];
  for (let i = 0; i < lines; i++) {
    const text = `${'abcdefghij'.repeat(((i * 7 + seed) % 40) + 1)}${i}`;
    const line = i % 3 === 0 ? `.${text}` : text;
    decoded.push(`${line}\r\n`);
    wire.push(`${line.startsWith('.') ? '.' : ''}${line}\r\n`);
  }
  return { wire: Buffer.from(wire.join('')), decoded: Buffer.from(decoded.join('')) };
}

describe('lent chunks', () => {
  it('carry every byte of a large DATA message unchanged while the reader holds them, through a few reused buffers', async () => {
    const seen = newReading();
    const { port } = await startServer(lendingHandler(seen, 3), { maxMessageSize: 64 * 1024 * 1024 });
    const client = await RawClient.inData(port);
    const { wire, decoded } = dottedBody(40_000, 1);
    // Several MiB in large writes: the server reads them in reads of tens of KiB.
    for (let offset = 0; offset < wire.length; offset += 1 << 20) client.write(wire.subarray(offset, offset + (1 << 20)));
    client.write('.\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(seen.overwritten).toBe(0);
    expect(Buffer.concat(seen.copies).equals(decoded)).toBe(true);
    expect(decoded.length).toBeGreaterThan(8 * 1024 * 1024);
  });

  it('reuse the same few buffers for a reader that keeps up', async () => {
    const seen = newReading();
    const { port } = await startServer(lendingHandler(seen, 0), { maxMessageSize: 64 * 1024 * 1024 });
    const client = await RawClient.inData(port);
    const { wire, decoded } = dottedBody(40_000, 7);
    for (let offset = 0; offset < wire.length; offset += 1 << 20) client.write(wire.subarray(offset, offset + (1 << 20)));
    client.write('.\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(Buffer.concat(seen.copies).equals(decoded)).toBe(true);
    // Without reuse each read would be memory of its own: over 8 MiB in reads of at most 64 KiB is
    // at least 128. With it, 3 when the machine is quiet; a busy one ends runs of reuse with short reads.
    expect(seen.backings.size).toBeLessThan(60);
  });

  it('keep the commands pipelined after the message intact, and the next message too', async () => {
    const seen = newReading();
    const { port } = await startServer(lendingHandler(seen, 2), { maxMessageSize: 64 * 1024 * 1024 });
    const client = await RawClient.inData(port);
    const first = dottedBody(20_000, 2);
    client.write(Buffer.concat([first.wire, Buffer.from('.\r\nMAIL FROM:<x@y.test>\r\nRCPT TO:<z@y.test>\r\nDATA\r\n')]));
    expect(await client.reply()).toMatch(QUEUED);
    expect(await client.reply()).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.reply()).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await client.reply()).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    const second = dottedBody(20_000, 3);
    client.write(Buffer.concat([second.wire, Buffer.from('.\r\nNOOP\r\n')]));
    expect(await client.reply()).toMatch(QUEUED);
    expect(await client.reply()).toBe('250 2.0.0 Ok\r\n');
    expect(seen.messages).toBe(2);
    expect(seen.overwritten).toBe(0);
    expect(Buffer.concat(seen.copies).equals(Buffer.concat([first.decoded, second.decoded]))).toBe(true);
  });

  it('carry pipelined BDAT chunks unchanged, the chunk headers between them read as commands', async () => {
    const seen = newReading();
    const { port } = await startServer(lendingHandler(seen, 2), { maxMessageSize: 64 * 1024 * 1024 });
    const client = await RawClient.ehlo(port);
    const payloads = Array.from({ length: 40 }, (_, i) => Buffer.alloc(70_000 + i * 997, String.fromCharCode(0x41 + (i % 26))));
    const wire = payloads.map((p, i) => Buffer.concat([Buffer.from(`BDAT ${p.length}${i === payloads.length - 1 ? ' LAST' : ''}\r\n`), p]));
    client.write(Buffer.concat([Buffer.from('MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n'), ...wire]));
    expect(await client.reply()).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.reply()).toBe('250 2.1.5 Recipient ok\r\n');
    for (const p of payloads.slice(0, -1)) expect(await client.reply()).toBe(`250 2.0.0 ${p.length} octets received\r\n`);
    expect(await client.reply()).toMatch(QUEUED);
    expect(seen.overwritten).toBe(0);
    expect(Buffer.concat(seen.copies).equals(Buffer.concat(payloads))).toBe(true);
  });

  it('take over what the stream held when the reader starts late, and lose nothing', async () => {
    const seen = newReading();
    const { port } = await startServer(lendingHandler(seen, 1, true), { maxMessageSize: 64 * 1024 * 1024 });
    const client = await RawClient.inData(port);
    const { wire, decoded } = dottedBody(20_000, 4);
    client.write(Buffer.concat([wire, Buffer.from('.\r\n')]));
    expect(await client.reply()).toMatch(QUEUED);
    expect(seen.overwritten).toBe(0);
    expect(Buffer.concat(seen.copies).equals(decoded)).toBe(true);
  });

  it('end with MessageTooBigError past maxMessageSize; the client gets 552 after its final dot', async () => {
    const seen = newReading();
    const { port } = await startServer(lendingHandler(seen), { maxMessageSize: 100_000 });
    const client = await RawClient.inData(port);
    client.write(dottedBody(2_000, 5).wire);
    await until(() => seen.error !== undefined);
    expect(seen.error).toBeInstanceOf(MessageTooBigError);
    client.write('.\r\n');
    expect(await client.reply()).toBe('552 5.3.4 Message size exceeds fixed maximum message size\r\n');
    expect(await client.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
  });

  it('end with MessageAbortedError when the client vanishes mid-message', async () => {
    const seen = newReading();
    const { port } = await startServer(lendingHandler(seen));
    const client = await RawClient.inData(port);
    client.write('half a message\r\n');
    await until(() => seen.copies.length > 0);
    client.close();
    await until(() => seen.error !== undefined);
    expect(seen.error).toBeInstanceOf(MessageAbortedError);
  });

  it('drop the rest when the reader stops early; the reply is data()’s', async () => {
    let first = '';
    const { port } = await startServer(
      class extends RequestHandler {
        static override streaming = true;
        override async data(): Promise<void> {
          for await (const chunk of this.request.lentChunks()) {
            first = chunk.toString('latin1', 0, 5);
            break;
          }
        }
      },
    );
    const client = await RawClient.inData(port);
    client.write(Buffer.concat([Buffer.from('hello'), dottedBody(20_000, 6).wire, Buffer.from('.\r\n')]));
    expect(await client.reply()).toMatch(QUEUED);
    expect(first).toBe('hello');
    expect(await client.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
  });

  it('refuse to be mixed with the stream, with an error that says so', async () => {
    const errors: string[] = [];
    const { port } = await startServer(
      class extends RequestHandler {
        static override streaming = true;
        override async data(): Promise<void> {
          this.request.stream.on('data', () => undefined);
          try {
            this.request.lentChunks();
          } catch (err) {
            errors.push((err as Error).message);
          }
          await new Promise((r) => this.request.stream.once('end', r));
        }
      },
    );
    const client = await RawClient.inData(port);
    client.write('x\r\n.\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(errors).toEqual(['the message is read as this.request.stream already: read it either as the stream or through lentChunks()']);
  });

  it('give a buffered handler its held body, once', async () => {
    const parts: string[] = [];
    const { port } = await startServer(
      class extends RequestHandler {
        override async data(): Promise<void> {
          for await (const chunk of this.request.lentChunks()) parts.push(chunk.toString());
        }
      },
    );
    const client = await RawClient.inData(port);
    client.write('same bytes\r\n.\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(parts).toEqual(['same bytes\r\n']);
  });
});
