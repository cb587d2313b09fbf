/** Streaming handlers, the size cap while streaming, and the memory budget for held bodies. */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageAbortedError, MessageTooBigError, RequestHandler, type HandlerClass } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer, until } from '../helpers/server.js';

afterEach(closeServers);

const QUEUED = /^250 2\.0\.0 Ok: queued as [0-9A-Z]{12}\r\n$/;

/** A Writable that counts bytes, and can be held shut to stand for a slow disk. */
class Counter extends Writable {
  bytes = 0;
  #gate: Promise<void> = Promise.resolve();
  #open: () => void = () => undefined;

  hold(): void {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
  }

  release(): void {
    this.#open();
  }

  override _write(chunk: Buffer, _encoding: string, done: (err?: Error) => void): void {
    this.bytes += chunk.length;
    this.#gate.then(() => done(), done);
  }
}

interface Seen {
  started: boolean;
  error: unknown;
  finished: number;
  counter: Counter;
  body: Buffer[];
}

function streamingHandler(seen: Seen): HandlerClass {
  return class Streaming extends RequestHandler {
    static override streaming = true;
    override async data(): Promise<void> {
      seen.started = true;
      const parts: Buffer[] = seen.body;
      this.request.stream.on('data', (part: Buffer) => parts.push(part));
      try {
        await pipeline(this.request.stream, seen.counter);
      } catch (err) {
        seen.error = err;
        throw err;
      }
    }
    override onFinish(): void {
      seen.finished++;
    }
  };
}

function newSeen(): Seen {
  return { started: false, error: undefined, finished: 0, counter: new Counter(), body: [] };
}

describe('streaming handlers', () => {
  it('read the message while it arrives; the reply waits for the end and for data()', async () => {
    const seen = newSeen();
    const { port } = await startServer(streamingHandler(seen));
    const client = await RawClient.inData(port);
    client.write('Subject: hi\r\n\r\n..first line\r\n');
    await until(() => seen.counter.bytes > 0);
    expect(seen.started).toBe(true);
    client.write('second\r\n.\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(Buffer.concat(seen.body).toString()).toBe('Subject: hi\r\n\r\n.first line\r\nsecond\r\n');
    expect(seen.finished).toBe(1);
  });

  it('slow down the client instead of buffering: a reader held shut stops the socket', async () => {
    const seen = newSeen();
    seen.counter.hold();
    const { port } = await startServer(streamingHandler(seen), { maxMessageSize: 64 * 1024 * 1024 });
    const client = await RawClient.inData(port);
    const line = Buffer.alloc(1022, 'a');
    const body = Buffer.concat(Array.from({ length: 32 * 1024 }, () => Buffer.concat([line, Buffer.from('\r\n')])));
    client.write(Buffer.concat([body, Buffer.from('.\r\n')]));
    // The server reads a little, then stops: most of the 32 MiB waits in the client's own buffer.
    await until(() => seen.counter.bytes > 0);
    await new Promise((r) => setTimeout(r, 300));
    expect(client.socket.writableLength).toBeGreaterThan(8 * 1024 * 1024);
    seen.counter.release();
    expect(await client.reply()).toMatch(QUEUED);
    expect(seen.counter.bytes).toBe(body.length);
  });

  it('end with MessageTooBigError past maxMessageSize; the client gets 552 after its final dot', async () => {
    const seen = newSeen();
    const { port } = await startServer(streamingHandler(seen), { maxMessageSize: 1000 });
    const client = await RawClient.inData(port);
    client.write(`${'x'.repeat(600)}\r\n`);
    client.write(`${'y'.repeat(600)}\r\n`);
    await until(() => seen.error !== undefined);
    expect(seen.error).toBeInstanceOf(MessageTooBigError);
    expect((seen.error as MessageTooBigError).code).toBe('ERR_SIROCCO_MESSAGE_TOO_BIG');
    client.write('more that is read and dropped\r\n.\r\n');
    expect(await client.reply()).toBe('552 5.3.4 Message size exceeds fixed maximum message size\r\n');
    await until(() => seen.finished === 1);
    expect(await client.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
  });

  it('end with MessageAbortedError, never a clean end, when the client vanishes mid-message', async () => {
    const seen = newSeen();
    const { port } = await startServer(streamingHandler(seen));
    const client = await RawClient.inData(port);
    client.write('half a message\r\n');
    await until(() => seen.counter.bytes > 0);
    client.close();
    await until(() => seen.finished === 1);
    expect(seen.error).toBeInstanceOf(MessageAbortedError);
  });

  it('may stop reading early: the rest is dropped and the reply is data()’s', async () => {
    let finished = 0;
    const { port } = await startServer(
      class extends RequestHandler {
        static override streaming = true;
        override data(): void {
          this.finish('taken, unread');
        }
        override onFinish(): void {
          finished++;
        }
      },
    );
    const client = await RawClient.inData(port);
    client.write(`${'z'.repeat(200_000)}\r\n.\r\n`);
    expect(await client.reply()).toBe('250 2.0.0 taken, unread\r\n');
    expect(finished).toBe(1);
  });

  it('throw a clear error when a streaming handler asks for the body', async () => {
    let message = '';
    const { port } = await startServer(
      class extends RequestHandler {
        static override streaming = true;
        override async data(): Promise<void> {
          try {
            void this.request.body;
          } catch (err) {
            message = (err as Error).message;
          }
          for await (const _ of this.request.stream) void _;
        }
      },
    );
    const client = await RawClient.inData(port);
    client.write('x\r\n.\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(message).toBe('this handler streams (static streaming = true): the body is not held; read this.request.stream');
  });

  it('feed BDAT chunks into the same stream', async () => {
    const seen = newSeen();
    const { port } = await startServer(streamingHandler(seen));
    const client = await RawClient.ehlo(port);
    client.write('MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nBDAT 4\r\nab\r\nBDAT 3 LAST\r\nxyz');
    await client.reply();
    await client.reply();
    expect(await client.reply()).toBe('250 2.0.0 4 octets received\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(Buffer.concat(seen.body).toString()).toBe('ab\r\nxyz');
  });

  it('give buffered handlers a stream over the held body too', async () => {
    let text = '';
    const { port } = await startServer(
      class extends RequestHandler {
        override async data(): Promise<void> {
          for await (const part of this.request.stream) text += (part as Buffer).toString();
        }
      },
    );
    const client = await RawClient.inData(port);
    client.write('same bytes\r\n.\r\n');
    expect(await client.reply()).toMatch(QUEUED);
    expect(text).toBe('same bytes\r\n');
  });
});

describe('the memory budget for held bodies', () => {
  it('answers 452 4.3.1 at DATA when it is spent, after the data when a body fills it, and frees what it held', async () => {
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const { port, app } = await startServer(
      class extends RequestHandler {
        override async data(): Promise<void> {
          if (this.request.body.length > 30_000) await gate;
        }
      },
      { bodyMemoryBudget: 50_000, logger },
    );
    // A holds 40 kB while its data() waits.
    const a = await RawClient.inData(port);
    a.write(`${'a'.repeat(39_998)}\r\n.\r\n`);
    await until(() => app.bodyBudget.held >= 40_000);
    // B declares a size that cannot fit: refused at DATA, the transaction stays open.
    const b = await RawClient.ehlo(port);
    expect(await b.command('MAIL FROM:<a@b.test> SIZE=20000')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await b.command('RCPT TO:<c@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await b.command('DATA')).toBe('452 4.3.1 Insufficient system storage, try again later\r\n');
    // C declares nothing: it may start, and is refused after its final dot when it fills the budget.
    const c = await RawClient.inData(port);
    c.write(`${'c'.repeat(19_998)}\r\n.\r\n`);
    expect(await c.reply()).toBe('452 4.3.1 Insufficient system storage, try again later\r\n');
    expect(app.bodyBudget.refusals).toBe(2);
    expect(lines.filter((l) => l.includes('body memory budget spent'))).toHaveLength(2);
    open();
    expect(await a.reply()).toMatch(QUEUED);
    await until(() => app.bodyBudget.held === 0);
    // B's transaction is still open: DATA goes through now.
    expect(await b.command('DATA')).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    b.write('fits now\r\n.\r\n');
    expect(await b.reply()).toMatch(QUEUED);
    expect(app.bodyBudget.held).toBe(0);
  });

  it('refuses a first BDAT chunk that cannot fit, reading its bytes, and ends the transaction', async () => {
    const { port } = await startServer(RequestHandler, { bodyMemoryBudget: 2048 });
    const client = await RawClient.ehlo(port);
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO:<c@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    client.write(`BDAT 3000 LAST\r\n${'QUIT\r\n'.repeat(500)}`);
    expect(await client.reply()).toBe('452 4.3.1 Insufficient system storage, try again later\r\n');
    expect(await client.command('RCPT TO:<c@d.test>')).toBe('503 5.5.1 Bad sequence of commands: need MAIL command\r\n');
  });

  it('does not count streaming handlers', async () => {
    const seen = newSeen();
    const { port, app } = await startServer(streamingHandler(seen), { bodyMemoryBudget: 1024 });
    const client = await RawClient.inData(port);
    client.write(`${'s'.repeat(100_000)}\r\n.\r\n`);
    expect(await client.reply()).toMatch(QUEUED);
    expect(app.bodyBudget.refusals).toBe(0);
  });

  it('is a validated setting', async () => {
    await expect(startServer(RequestHandler, { bodyMemoryBudget: 10 })).rejects.toThrow(/bodyMemoryBudget/);
  });
});
