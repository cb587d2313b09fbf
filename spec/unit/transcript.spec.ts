/** The transcript's lines: what the debug log may show of a command or a reply, and what it never shows. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REDACTED, transcriptCommand, transcriptReply } from '../../lib/protocol/transcript.js';

describe('transcriptCommand', () => {
  it('keeps an ordinary command as it came', () => {
    expect(transcriptCommand(Buffer.from('MAIL FROM:<a@b.test> SIZE=10'), false)).toBe('MAIL FROM:<a@b.test> SIZE=10');
  });

  it("keeps AUTH's mechanism and redacts its initial response, in any case and spacing", () => {
    expect(transcriptCommand(Buffer.from('AUTH PLAIN AGFsaWNlAHNlY3JldA=='), false)).toBe(`AUTH PLAIN ${REDACTED}`);
    expect(transcriptCommand(Buffer.from('auth\tlogin YWxpY2U='), false)).toBe(`auth\tlogin ${REDACTED}`);
    expect(transcriptCommand(Buffer.from('AUTH LOGIN'), false)).toBe('AUTH LOGIN');
  });

  it('redacts every line of an AUTH exchange whole', () => {
    expect(transcriptCommand(Buffer.from('c2VjcmV0'), true)).toBe(REDACTED);
    expect(transcriptCommand(Buffer.from('*'), true)).toBe(REDACTED);
  });

  it('cuts a long line and says how long it was', () => {
    expect(transcriptCommand(Buffer.from(`NOOP ${'x'.repeat(995)}`), false)).toBe(`NOOP ${'x'.repeat(507)}… (1000 bytes)`);
  });

  it('never shows an initial response, whatever it is', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('PLAIN', 'LOGIN', 'XOAUTH2', 'SCRAM-SHA-256'),
        fc.base64String({ minLength: 4, maxLength: 400 }),
        (mechanism, secret) => {
          expect(transcriptCommand(Buffer.from(`AUTH ${mechanism} ${secret}`), false)).toBe(`AUTH ${mechanism} ${REDACTED}`);
        },
      ),
    );
  });
});

describe('transcriptReply', () => {
  it('shows a reply without its line end, multi-line replies on one line', () => {
    expect(transcriptReply('250 2.1.0 Sender ok\r\n')).toBe('250 2.1.0 Sender ok');
    expect(transcriptReply('250-mx.test\r\n250 SIZE 10\r\n')).toBe('250-mx.test | 250 SIZE 10');
  });

  it("redacts a 334 challenge's text", () => {
    expect(transcriptReply('334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2U+\r\n')).toBe(`334 ${REDACTED}`);
  });
});
