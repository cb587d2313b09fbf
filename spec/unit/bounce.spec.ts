import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { bounceMessage, type BounceFacts } from '../../lib/outbound/bounce.js';

const FACTS: BounceFacts = {
  reportingMta: 'relay.test',
  remoteMta: 'smarthost.test',
  sender: 'a@b.test',
  refusals: [
    { recipient: 'no@d.test', code: 550, reply: '550 5.1.1 no such user' },
    { recipient: 'full@d.test', code: 452, reply: '452-4.2.2 mailbox full\n452 4.2.2 try another day' },
  ],
  arrival: new Date(Date.UTC(2026, 10, 21, 8, 30, 0)),
  original: Buffer.from('Subject: hello\r\nFrom: a@b.test\r\n\r\nthe body stays home\r\n'),
  id: 'ABCDEFGHJKMN',
};

/** The MIME parts of a multipart message, as [content type, text]. */
function parts(message: Buffer): [string, string][] {
  const text = message.toString();
  const boundary = /boundary="([^"]+)"/.exec(text)?.[1] ?? '';
  // RFC 2046 §5.1.1: the CRLF before a boundary line belongs to the boundary, not to the part.
  return text
    .split(`\r\n--${boundary}`)
    .slice(1, -1)
    .map((part) => {
      const [head = '', ...rest] = part.replace(/^\r\n/, '').split('\r\n\r\n');
      return [/^Content-Type: ([^;\r\n]+)/m.exec(head)?.[1] ?? '', rest.join('\r\n\r\n')];
    });
}

describe('bounceMessage', () => {
  it('is a multipart/report from the mail system to the sender, marked as automatic', async () => {
    const message = bounceMessage(FACTS);
    const parsed = await simpleParser(message);
    expect(parsed.from?.value).toEqual([{ name: 'Mail Delivery System', address: 'MAILER-DAEMON@relay.test' }]);
    expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.text : '').toBe('a@b.test');
    expect(parsed.subject).toBe('Undelivered Mail Returned to Sender');
    expect(parsed.messageId).toBe('<ABCDEFGHJKMN.bounce@relay.test>');
    expect(parsed.headers.get('auto-submitted')).toBe('auto-replied');
    expect(parsed.headers.get('content-type')).toMatchObject({ value: 'multipart/report', params: { 'report-type': 'delivery-status' } });
    expect(message.includes('\n') && !/[^\r]\n/.test(message.toString())).toBe(true);
  });

  it('names every refused recipient with its status, the remote host and its reply on one line', () => {
    const [human, status, headers] = parts(bounceMessage(FACTS));
    expect(human?.[0]).toBe('text/plain');
    expect(human?.[1]).toContain(
      '<no@d.test>: smarthost.test said: 550 5.1.1 no such user\r\n<full@d.test>: smarthost.test said: 452-4.2.2 mailbox full 452 4.2.2 try another day',
    );
    expect(status).toEqual([
      'message/delivery-status',
      [
        'Reporting-MTA: dns; relay.test',
        'Arrival-Date: Sat, 21 Nov 2026 08:30:00 +0000',
        '',
        'Final-Recipient: rfc822; no@d.test',
        'Action: failed',
        'Status: 5.1.1',
        'Remote-MTA: dns; smarthost.test',
        'Diagnostic-Code: smtp; 550 5.1.1 no such user',
        '',
        'Final-Recipient: rfc822; full@d.test',
        'Action: failed',
        'Status: 4.2.2',
        'Remote-MTA: dns; smarthost.test',
        'Diagnostic-Code: smtp; 452-4.2.2 mailbox full 452 4.2.2 try another day',
        '',
      ].join('\r\n'),
    ]);
    // The original's header section comes back, never its body.
    expect(headers).toEqual(['text/rfc822-headers', 'Subject: hello\r\nFrom: a@b.test\r\n']);
  });

  it('reports a relayed delivery: its own subject and words, Action: relayed with the 2.x.x status, the header section only', () => {
    const message = bounceMessage({
      ...FACTS,
      action: 'relayed',
      returnFull: false,
      refusals: [{ recipient: 'ok@d.test', code: 250, reply: '250 2.0.0 Ok: queued as X', remoteMta: 'mx.d.test' }],
    });
    expect(message.toString()).toContain('Subject: Relayed Mail (no further notice will come)\r\n');
    const [human, status, headers] = parts(message);
    expect(human?.[1]).toContain('<ok@d.test>: mx.d.test said: 250 2.0.0 Ok: queued as X');
    expect(status?.[1]).toContain(
      'Final-Recipient: rfc822; ok@d.test\r\nAction: relayed\r\nStatus: 2.0.0\r\nRemote-MTA: dns; mx.d.test\r\nDiagnostic-Code: smtp; 250 2.0.0 Ok: queued as X',
    );
    expect(headers?.[0]).toBe('text/rfc822-headers');
  });

  it('falls back to the class of the reply code when the reply has no matching enhanced code', () => {
    const status = (code: number, reply: string): string | undefined =>
      /Status: (\S+)/.exec(bounceMessage({ ...FACTS, refusals: [{ recipient: 'x@d.test', code, reply }] }).toString())?.[1];
    expect(status(550, '550 no such user')).toBe('5.0.0');
    expect(status(550, '550 4.1.1 mismatched class')).toBe('5.0.0');
    expect(status(451, '451 4.3.0 later')).toBe('4.3.0');
  });

  it('uses the global report types of RFC 6533 when an address is in UTF-8', () => {
    const types = parts(bounceMessage({ ...FACTS, refusals: [{ recipient: 'josé@d.test', code: 550, reply: '550 5.1.1 no' }] })).map(
      ([type]) => type,
    );
    expect(types).toEqual(['text/plain', 'message/global-delivery-status', 'message/global-headers']);
    expect(bounceMessage({ ...FACTS, sender: 'ñ@b.test' }).toString()).toContain('Final-Recipient: utf-8; no@d.test');
  });

  it('returns a header section that has no blank line, and cuts a huge one', () => {
    const headersOnly = parts(bounceMessage({ ...FACTS, original: Buffer.from('Subject: no body') }))[2];
    expect(headersOnly?.[1]).toBe('Subject: no body\r\n');
    const huge = Buffer.from(`X-Big: ${'y'.repeat(100_000)}\r\n\r\nbody`);
    const cut = parts(bounceMessage({ ...FACTS, original: huge }))[2]?.[1] ?? '';
    expect(cut.length).toBe(32 * 1024 + 2);
  });
});
