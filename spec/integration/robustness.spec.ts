/**
 * No input crashes the server or leaves a connection hanging: random streams of commands, bytes
 * and line ends, cut into random chunks, against a live server.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestHandler, SMTPError } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { exchange } from '../helpers/fuzz.js';
import { closeServers, startServer } from '../helpers/server.js';

let port = 0;

class Picky extends RequestHandler {
  override rcpt(address: string): void {
    if (address.startsWith('no')) throw new SMTPError(550, [5, 1, 1], 'no such user');
  }
  override async data(): Promise<void> {
    if (this.request.body.includes('boom')) throw new Error('handler failure');
    await Promise.resolve();
  }
}

beforeAll(async () => {
  ({ port } = await startServer(Picky, { maxMessageSize: 2000, maxLineLength: 512, maxBadCommands: 1000 }));
});
afterAll(closeServers);

const piece = fc.oneof(
  fc.constantFrom(
    'EHLO x.test\r\n',
    'HELO x.test\r\n',
    'MAIL FROM:<a@b.test>\r\n',
    'MAIL FROM:<> SIZE=100\r\n',
    'RCPT TO:<c@d.test>\r\n',
    'RCPT TO:<no@d.test>\r\n',
    'RCPT TO:<>\r\n',
    'DATA\r\n',
    '.\r\n',
    '..\r\n',
    'boom\r\n',
    'RSET\r\n',
    'NOOP\r\n',
    'VRFY x\r\n',
    'STARTTLS\r\n',
    'AUTH PLAIN\r\n',
    '\r\n',
    '\n',
    '\r',
    '.',
    '\n.\n',
    '\r.\r',
    '\r\n.\r\n',
    'MAIL FROM:<a@b.test> SIZE=99999999\r\n',
    'MAIL FROM:<jörg@b.test>\r\n',
    'GET / HTTP/1.1\r\n',
  ),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.integer({ min: 1, max: 1500 }).map((n) => 'x'.repeat(n)),
);

/** Sends `input` cut at `cuts`, then leaves DATA if the input left us in it and asks something with a unique answer. */
function probe(input: string, cuts: number[]): Promise<{ text: string; closed: boolean }> {
  return exchange(port, Buffer.from(input, 'latin1'), cuts, '\r\n.\r\nRSET\r\nVRFY probe\r\n', (t) =>
    t.includes('252 2.5.0 Cannot VRFY user'),
  );
}

describe('robustness', () => {
  it('property: any input gets well-formed replies and ends answered or closed with 421', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 25 }), fc.array(fc.nat(), { maxLength: 6 }), async (pieces, cuts) => {
        const input = pieces.join('');
        const { text, closed } = await probe(input, cuts);
        const lines = text.split('\r\n').slice(0, -1);
        expect(lines[0]).toMatch(/^220 /);
        // A first byte of 0x16 is a TLS handshake on the plaintext port: closed without a word.
        if (input.startsWith('\x16')) return;
        for (const line of lines) expect(line).toMatch(/^[2-5]\d\d[ -]/);
        if (closed && !text.includes('252 2.5.0 Cannot VRFY user')) {
          expect(lines[lines.length - 1]).toMatch(/^421 /);
        } else {
          expect(text).toContain('252 2.5.0 Cannot VRFY user');
        }
      }),
      { numRuns: 150 },
    );
    // And the server still greets.
    const c = await RawClient.greeted(port);
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    c.close();
  }, 120_000);
});
