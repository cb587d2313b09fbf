/**
 * A streaming message under mail authentication: the verifier reads a copy of each part, and a
 * verifier that falls behind holds the client back (the server stops feeding) instead of the
 * copy growing with the message. An attacker's message that is slow to verify (many signatures)
 * costs at most VERIFY_BEHIND and a bit more of memory, not the message's size.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { authenticateStream, VERIFY_BEHIND } from '../../lib/app/authentication.js';
import { MessageStream } from '../../lib/app/message-stream.js';
import type { SMTPRequest } from '../../lib/app/request.js';
import type { MessageAuthentication } from '../../lib/auth/verify.js';

const PART = Buffer.alloc(64 * 1024, 0x61);
const request = {
  session: { remoteAddress: '192.0.2.1', heloName: 'client.test' },
  mailFrom: 'a@example.test',
  keepAuthentication: () => undefined,
  setAuthenticating: () => undefined,
} as unknown as SMTPRequest;
const verdict = { dmarc: { result: 'none' } } as MessageAuthentication;

/** A verifier that reads nothing until `release()`, then reads the whole copy. */
function stalledVerifier() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let read = 0;
  return {
    verifier: {
      authservId: 'mx.test',
      async verify(copy: Buffer | Readable): Promise<MessageAuthentication> {
        await released;
        for await (const part of copy as Readable) read += (part as Buffer).length;
        return verdict;
      },
    },
    release,
    read: () => read,
  };
}

describe('the verifier of a streaming message is fed with back-pressure', () => {
  it('a verifier that does not read stops the feeding within its bound; it catches up and reads every byte', async () => {
    const stream = new MessageStream();
    // The handler is done with the message (what is left is dropped): only the verifier can be behind.
    stream.discard();
    const slow = stalledVerifier();
    const done = authenticateStream(slow.verifier, stream, request, false);
    const head = Buffer.from('Subject: x\r\n\r\n');
    expect(stream.feed(head)).toBe(true);
    let fed = head.length;
    let parts = 0;
    while (stream.feed(PART)) {
      fed += PART.length;
      parts++;
      expect(parts).toBeLessThan(1000); // 64 MiB: it would never stop
    }
    fed += PART.length;
    // The copy holds at most its writable and readable buffers (each VERIFY_BEHIND) and a part.
    expect(fed).toBeGreaterThan(VERIFY_BEHIND);
    expect(fed).toBeLessThanOrEqual(2 * VERIFY_BEHIND + 2 * PART.length);

    let caughtUp = false;
    const demanded = stream.demand().then(() => (caughtUp = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(caughtUp).toBe(false);
    slow.release();
    await demanded;
    // The rest of the message, then its end: the verifier has read every byte.
    for (let i = 0; i < 40; i++) {
      if (!stream.feed(PART)) await stream.demand();
      fed += PART.length;
    }
    stream.complete();
    await done;
    expect(slow.read()).toBe(fed);
  });

  it('a verdict before the end (out of time) lets go of the copy: the rest is fed without waiting', async () => {
    const stream = new MessageStream();
    stream.discard();
    const early = {
      authservId: 'mx.test',
      verify: () => Promise.resolve(verdict),
    };
    const done = authenticateStream(early, stream, request, false);
    await done;
    for (let i = 0; i < 100; i++) expect(stream.feed(PART)).toBe(true);
    stream.complete();
  });
});
