/** DSN parameters (RFC 3461) and REQUIRETLS (RFC 8689) over real sockets. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RequestHandler, type Envelope, type HandlerClass } from '../../lib/index.js';
import { makeCertificates, type TestCertificates } from '../helpers/certs.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer } from '../helpers/server.js';

let certs: TestCertificates;
beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs.cleanup());
afterEach(closeServers);

function envelopes(seen: Envelope[]): HandlerClass {
  return class extends RequestHandler {
    override data(): void {
      seen.push(this.request.envelope);
    }
  };
}

describe('DSN', () => {
  it('is offered only when enabled, and its parameters are unknown otherwise', async () => {
    const { port } = await startServer();
    const client = await RawClient.greeted(port);
    expect(await client.command('EHLO c.test')).not.toContain('DSN');
    expect(await client.command('MAIL FROM:<a@b.test> RET=HDRS')).toBe('555 5.5.4 RET parameter not recognized\r\n');
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO:<c@d.test> NOTIFY=NEVER')).toBe('555 5.5.4 NOTIFY parameter not recognized\r\n');
    // Closed here: the server's close would otherwise wait out its grace for the open transaction.
    client.close();
  });

  it('puts RET, ENVID, NOTIFY and ORCPT on the envelope, xtext decoded', async () => {
    const seen: Envelope[] = [];
    const { port } = await startServer(envelopes(seen), { dsn: true });
    const client = await RawClient.greeted(port);
    expect(await client.command('EHLO c.test')).toContain('250 DSN\r\n');
    expect(await client.command('MAIL FROM:<a@b.test> RET=hdrs ENVID=QQ+2B314')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO:<c@d.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;C+40D.test')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await client.command('RCPT TO:<e@d.test> NOTIFY=NEVER')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await client.command('RCPT TO:<f@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await client.command('DATA')).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    client.write('x\r\n.\r\n');
    await client.reply();
    expect(seen[0]?.dsn).toEqual({ ret: 'HDRS', envid: 'QQ+314' });
    expect(seen[0]?.rcptDsn).toEqual([
      { notify: ['SUCCESS', 'FAILURE'], orcpt: { type: 'rfc822', address: 'C@D.test' } },
      { notify: 'NEVER', orcpt: undefined },
      undefined,
    ]);
  });

  it.each([
    ['MAIL FROM:<a@b.test> RET=ALL', '501 5.5.4 RET must be FULL or HDRS'],
    ['MAIL FROM:<a@b.test> ENVID=a+0Ab', '501 5.5.4 ENVID holds a control character'],
    ['MAIL FROM:<a@b.test> ENVID=a+zz', '501 5.5.4 ENVID is not valid xtext'],
    [`MAIL FROM:<a@b.test> ENVID=${'e'.repeat(101)}`, '501 5.5.4 ENVID must be 1 to 100 characters of xtext'],
    ['RCPT TO:<c@d.test> NOTIFY=NEVER,SUCCESS', '501 5.5.4 NOTIFY=NEVER must stand alone'],
    ['RCPT TO:<c@d.test> NOTIFY=SOMETIMES', '501 5.5.4 NOTIFY value SOMETIMES is unknown'],
    ['RCPT TO:<c@d.test> NOTIFY=DELAY,DELAY', '501 5.5.4 NOTIFY names DELAY twice'],
    ['RCPT TO:<c@d.test> ORCPT=c@d.test', '501 5.5.4 ORCPT must be addr-type;address'],
    ['RCPT TO:<c@d.test> ORCPT=rfc822;a+00b', '501 5.5.4 ORCPT holds a control character'],
  ])('%s → %s', async (line, reply) => {
    const { port } = await startServer(RequestHandler, { dsn: true });
    const client = await RawClient.ehlo(port);
    if (line.startsWith('RCPT')) await client.command('MAIL FROM:<a@b.test>');
    expect(await client.command(line)).toBe(`${reply}\r\n`);
    client.close();
  });
});

describe('REQUIRETLS', () => {
  it('is refused without TLS and offered, then taken onto the envelope, under TLS', async () => {
    const seen: Envelope[] = [];
    const { port } = await startServer(envelopes(seen), { tls: { key: certs.key, cert: certs.cert } });
    const client = await RawClient.greeted(port);
    expect(await client.command('EHLO c.test')).not.toContain('REQUIRETLS');
    expect(await client.command('MAIL FROM:<a@b.test> REQUIRETLS')).toBe('530 5.7.10 REQUIRETLS needs TLS: issue STARTTLS first\r\n');
    expect(await client.command('STARTTLS')).toBe('220 2.0.0 Ready to start TLS\r\n');
    await client.startTls({ ca: certs.ca, servername: 'localhost' });
    expect(await client.command('EHLO c.test')).toContain('250 REQUIRETLS\r\n');
    expect(await client.command('MAIL FROM:<a@b.test> REQUIRETLS=yes')).toBe('501 5.5.4 REQUIRETLS takes no value\r\n');
    expect(await client.command('MAIL FROM:<a@b.test> REQUIRETLS')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO:<c@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await client.command('DATA')).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    client.write('x\r\n.\r\n');
    await client.reply();
    expect(seen[0]?.requireTls).toBe(true);
  });
});
