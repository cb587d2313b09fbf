/**
 * No input crashes POP3 or the PROXY preamble, or leaves a connection hanging: random command
 * sequences and bytes, cut into random chunks, against live servers; memory stays bounded.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestHandler, type AuthCredentials } from '../../lib/index.js';
import { MaildirStore, Pop3Server } from '../../lib/entry/pop3.js';
import { exchange } from '../helpers/fuzz.js';
import { closeServers, silent, startServer } from '../helpers/server.js';

let popPort = 0;
let proxyPort = 0;
let pop: Pop3Server;
let root = '';
const CAPA_END = 'IMPLEMENTATION Sirocco\r\n.\r\n';

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'sirocco-fuzz-'));
  for (const sub of ['new', 'cur', 'tmp']) mkdirSync(join(root, sub));
  for (let i = 0; i < 3; i++) writeFileSync(join(root, 'new', `${1000 + i}.M1P1Q${i}.fuzz`), `Subject: ${i}\r\n\r\n.dot\r\nline ${i}\r\n`);
  pop = new Pop3Server({
    store: new MaildirStore(root),
    authenticate: (c: AuthCredentials) => c.mechanism === 'PLAIN' && c.password === 'pw',
    hostname: 'pop.test',
    allowInsecureAuth: true,
    logger: silent,
  });
  await pop.listen(0, '127.0.0.1');
  popPort = pop.address()?.port ?? 0;
  ({ port: proxyPort } = await startServer(RequestHandler, { proxyFrom: ['127.0.0.1'], proxyTimeout: 1000 }));
});
afterAll(async () => {
  await pop.close();
  await closeServers();
  rmSync(root, { recursive: true, force: true });
});

const popPiece = fc.oneof(
  fc.constantFrom(
    'USER alice\r\n',
    'USER bob\r\n',
    'PASS pw\r\n',
    'PASS wrong\r\n',
    'APOP alice 0123\r\n',
    'CAPA\r\n',
    'STAT\r\n',
    'LIST\r\n',
    'LIST 1\r\n',
    'LIST 99\r\n',
    'RETR 1\r\n',
    'RETR 0\r\n',
    'TOP 2 0\r\n',
    'TOP 1 -1\r\n',
    'UIDL\r\n',
    'DELE 1\r\n',
    'RSET\r\n',
    'NOOP\r\n',
    'STLS\r\n',
    'AUTH PLAIN\r\n',
    '\r\n',
    '\n',
    '\r',
    'user alice\r\n',
  ),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.integer({ min: 1, max: 1500 }).map((n) => 'x'.repeat(n)),
);

describe('POP3 robustness', () => {
  it('property: any input is answered, and the session still answers CAPA or was closed after its last line', async () => {
    const before = process.memoryUsage().rss;
    await fc.assert(
      fc.asyncProperty(fc.array(popPiece, { maxLength: 25 }), fc.array(fc.nat(), { maxLength: 6 }), async (pieces, cuts) => {
        // QUIT would delete: the probe is CAPA (served in every state), and the session is dropped, never QUIT.
        const { text, closed } = await exchange(popPort, Buffer.from(pieces.join(''), 'latin1'), cuts, '\r\nCAPA\r\n', (t) =>
          t.endsWith(CAPA_END),
        );
        expect(text.startsWith('+OK pop.test POP3 server ready\r\n')).toBe(true);
        if (!closed) expect(text.endsWith(CAPA_END)).toBe(true);
        else expect(text.endsWith('\r\n')).toBe(true);
      }),
      { numRuns: 120 },
    );
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 1024 * 1024);
  }, 120_000);
});

/** A v2 header's first 16 bytes, then `body`. */
function v2(verCmd: number, family: number, body: Uint8Array): Buffer {
  const head = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(body.length);
  return Buffer.concat([head, Buffer.from([verCmd, family]), length, body]);
}

const header = fc.oneof(
  fc
    .constantFrom(
      'PROXY TCP4 192.0.2.7 10.0.0.1 51234 25\r\n',
      'PROXY TCP6 2001:db8::7 2001:db8::1 4000 25\r\n',
      'PROXY UNKNOWN\r\n',
      'PROXY TCP4 192.0.2.700 10.0.0.1 1 25\r\n',
      'PROXY \r\n',
      'PROXY',
      'EHLO x.test\r\n',
    )
    .map((t) => Buffer.from(t)),
  fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 260 }))
    .map(([vc, fam, body]) => v2(vc, fam, body)),
  fc
    .tuple(fc.constantFrom(0x21, 0x20), fc.constantFrom(0x11, 0x21, 0x00, 0x31), fc.uint8Array({ minLength: 0, maxLength: 300 }))
    .map(([vc, fam, body]) => v2(vc, fam, body)),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
);

describe('PROXY preamble robustness', () => {
  it('property: any preamble is greeted and served, or closed without a word; never a hang', async () => {
    await fc.assert(
      fc.asyncProperty(header, fc.array(fc.nat(), { maxLength: 6 }), async (preamble, cuts) => {
        const { text, closed } = await exchange(proxyPort, preamble, cuts, 'EHLO probe.test\r\nNOOP\r\n', (t) =>
          t.includes('250 2.0.0 Ok\r\n'),
        );
        if (text === '') {
          expect(closed).toBe(true);
          return;
        }
        expect(text.startsWith('220 mx.test ESMTP Sirocco\r\n')).toBe(true);
        for (const line of text.split('\r\n').slice(0, -1)) expect(line).toMatch(/^[2-5]\d\d[ -]/);
        if (!closed) expect(text).toContain('250 2.0.0 Ok\r\n');
      }),
      { numRuns: 200 },
    );
  }, 120_000);
});
