import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatReply, REPLIES, SMTPError } from '../../lib/index.js';

describe('formatReply', () => {
  it('puts the enhanced code on every line and dashes on all but the last', () => {
    expect(formatReply({ code: 250, enhanced: [2, 0, 0], lines: ['one', 'two'] })).toBe('250-2.0.0 one\r\n250 2.0.0 two\r\n');
    expect(formatReply({ code: 354, lines: ['go'] })).toBe('354 go\r\n');
  });

  it('never lets text inject a line of its own', () => {
    expect(formatReply({ code: 550, enhanced: [5, 0, 0], lines: ['a\r\n250 ok'] })).toBe('550 5.0.0 a  250 ok\r\n');
  });
});

describe('SMTPError', () => {
  it('carries the client text apart from the log text', () => {
    const err = new SMTPError(550, [5, 7, 1], 'no', { logMessage: 'refused x' });
    expect(formatReply(err.toReply())).toBe('550 5.7.1 no\r\n');
    expect(err.logMessage).toBe('refused x');
  });

  it('names the bad field when built wrong', () => {
    expect(() => new SMTPError(250, undefined, 'x')).toThrow('SMTPError: code must be an integer from 400 to 599, got 250');
    expect(() => new SMTPError(550, [4, 0, 0], 'x')).toThrow('SMTPError: enhanced code class 4 does not match reply code 550');
    expect(() => new SMTPError(550, [5, 1000, 0], 'x')).toThrow(
      'SMTPError: enhanced code parts must be integers from 0 to 999, got 5.1000.0',
    );
  });
});

describe('the reply catalogue', () => {
  it('documents every entry in docs/replies.md', () => {
    const doc = readFileSync(new URL('../../docs/replies.md', import.meta.url), 'utf8');
    const missing = Object.keys(REPLIES).filter((name) => !doc.includes(`| \`${name}\` |`));
    expect(missing).toEqual([]);
  });

  it('gives every 2xx, 4xx and 5xx reply an enhanced code of its class, except the greeting', () => {
    for (const [name, make] of Object.entries(REPLIES)) {
      const reply = (make as (...a: unknown[]) => { code: number; enhanced?: readonly number[] })(
        name === 'authChallenge' ? Buffer.from('x') : 'x',
        'y',
      );
      if (name === 'greeting' || (reply.code >= 300 && reply.code < 400)) continue;
      expect(reply.enhanced?.[0], name).toBe(Math.floor(reply.code / 100));
    }
  });
});

describe('replies made from one string', () => {
  it('keep the last one made, formatted and frozen, and make a new one for another string', () => {
    const first = REPLIES.greeting('mx.example');
    expect(REPLIES.greeting('mx.example')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(formatReply(first)).toBe('220 mx.example ESMTP Sirocco\r\n');
    expect(formatReply(REPLIES.greeting('other.example'))).toBe('220 other.example ESMTP Sirocco\r\n');
    expect(first.lines).toEqual(['mx.example ESMTP Sirocco']);
    expect(formatReply(REPLIES.greeting('mx.example'))).toBe('220 mx.example ESMTP Sirocco\r\n');
    expect(REPLIES.syntax('MAIL FROM:<address>')).toMatchObject({ code: 501, name: 'syntax', lines: ['Syntax: MAIL FROM:<address>'] });
    expect(formatReply(REPLIES.syntax('a\r\nb'))).toBe('501-5.5.4 Syntax: a \r\n501 5.5.4 b\r\n');
  });
});

describe('replies formatted once but for a name', () => {
  it('give the same text, lines and wire form as a reply built whole', () => {
    const queued = REPLIES.queued('ABC123');
    expect(formatReply(queued)).toBe('250 2.0.0 Ok: queued as ABC123\r\n');
    expect(queued).toMatchObject({ code: 250, enhanced: [2, 0, 0], name: 'queued', lines: ['Ok: queued as ABC123'] });
    expect(formatReply(REPLIES.queued('X\r\n250 injected'))).toBe('250 2.0.0 Ok: queued as X  250 injected\r\n');
    expect(formatReply(REPLIES.queued('ABC123', 'stored\nfor later'))).toBe('250-2.0.0 stored\r\n250 2.0.0 for later\r\n');
  });
});
