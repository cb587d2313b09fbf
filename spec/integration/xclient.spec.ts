/** XCLIENT and XFORWARD (Postfix's XCLIENT_README and XFORWARD_README), over real sockets with exact replies. */
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler, traceHeaders, type HandlerClass, type SessionInfo } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer } from '../helpers/server.js';

afterEach(closeServers);

function tracing(seen: { received: string; session: SessionInfo }[]): HandlerClass {
  return class extends RequestHandler {
    override data(): void {
      seen.push({ received: traceHeaders(this.request, 'mx.test').split('\r\n').slice(1, 2).join(''), session: this.request.session });
    }
  };
}

async function send(client: RawClient): Promise<void> {
  expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
  expect(await client.command('RCPT TO:<c@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
  expect(await client.command('DATA')).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
  expect(await client.command('x\r\n.')).toMatch(/^250 /);
}

describe('XCLIENT and XFORWARD', () => {
  it('are offered to trusted peers only; others get 550 5.7.0', async () => {
    const { port } = await startServer(RequestHandler, { xclientFrom: ['127.0.0.1'] });
    const trusted = await RawClient.greeted(port);
    expect(await trusted.command('EHLO c.test')).toContain(
      '250-XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT\r\n250 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE\r\n',
    );
    const other = await RawClient.connect(port, '127.0.0.1', '127.0.0.2');
    await other.reply();
    expect(await other.command('EHLO c.test')).not.toContain('XCLIENT');
    expect(await other.command('XCLIENT ADDR=192.0.2.7')).toBe('550 5.7.0 Insufficient authorization\r\n');
    expect(await other.command('XFORWARD ADDR=192.0.2.7')).toBe('550 5.7.0 Insufficient authorization\r\n');
  });

  it('XCLIENT replaces the client with a new 220; the client greets again and is the one Received names', async () => {
    const seen: { received: string; session: SessionInfo }[] = [];
    const { port } = await startServer(tracing(seen), { xclientFrom: ['127.0.0.0/8'] });
    const client = await RawClient.ehlo(port);
    expect(
      await client.command('XCLIENT NAME=client.example ADDR=IPV6:2001:db8::7 PORT=4711 HELO=orig.example PROTO=ESMTP LOGIN=alice'),
    ).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('503 5.5.1 Bad sequence of commands: send HELO/EHLO first\r\n');
    expect(await client.command('EHLO filter.test')).toMatch(/^250-mx\.test greets filter\.test\r\n/);
    await send(client);
    expect(seen[0]?.session).toMatchObject({ remoteAddress: '2001:db8::7', remotePort: 4711, clientName: 'client.example', user: 'alice' });
    expect(seen[0]?.received).toBe('Received: from filter.test (client.example [2001:db8::7])');
  });

  it('XFORWARD changes what Received says for the next transaction only', async () => {
    const seen: { received: string; session: SessionInfo }[] = [];
    const { port } = await startServer(tracing(seen), { xclientFrom: ['127.0.0.1'] });
    const client = await RawClient.ehlo(port);
    expect(await client.command('XFORWARD NAME=[UNAVAILABLE] ADDR=192.0.2.9 HELO=orig.example')).toBe('250 2.0.0 Ok\r\n');
    expect(await client.command('XFORWARD SOURCE=REMOTE IDENT=abc+2B1')).toBe('250 2.0.0 Ok\r\n');
    await send(client);
    await send(client);
    expect(seen[0]?.received).toBe('Received: from orig.example ([192.0.2.9])');
    expect(seen[0]?.session.forwarded).toMatchObject({
      addr: '192.0.2.9',
      helo: 'orig.example',
      ident: 'abc+1',
      source: 'REMOTE',
      name: undefined,
    });
    expect(seen[0]?.session.remoteAddress).toBe('127.0.0.1');
    expect(seen[1]?.received).toBe('Received: from c.test ([127.0.0.1])');
  });

  it.each([
    ['XCLIENT', '501 5.5.4 XCLIENT at least one attribute is needed'],
    ['XCLIENT ADDR=999.1.1.1', '501 5.5.4 XCLIENT ADDR is not an IP address'],
    ['XCLIENT PORT=70000', '501 5.5.4 XCLIENT PORT is not a port number'],
    ['XCLIENT PROTO=HTTP', '501 5.5.4 XCLIENT PROTO must be SMTP or ESMTP'],
    ['XCLIENT COLOR=red', '501 5.5.4 XCLIENT bad attribute: COLOR=red'],
    ['XCLIENT HELO=a+0Db', '501 5.5.4 XCLIENT HELO holds a control character'],
    ['XFORWARD LOGIN=alice', '501 5.5.4 XFORWARD bad attribute: LOGIN=alice'],
    ['XFORWARD SOURCE=NEAR', '501 5.5.4 XFORWARD SOURCE must be LOCAL or REMOTE'],
  ])('%s → %s', async (line, reply) => {
    const { port } = await startServer(RequestHandler, { xclientFrom: ['127.0.0.1'] });
    const client = await RawClient.ehlo(port);
    expect(await client.command(line)).toBe(`${reply}\r\n`);
  });

  it('is refused inside a mail transaction', async () => {
    const { port } = await startServer(RequestHandler, { xclientFrom: ['127.0.0.1'] });
    const client = await RawClient.ehlo(port);
    await client.command('MAIL FROM:<a@b.test>');
    expect(await client.command('XCLIENT ADDR=192.0.2.7')).toBe(
      '503 5.5.1 Bad sequence of commands: XCLIENT not allowed during a mail transaction\r\n',
    );
    expect(await client.command('XFORWARD ADDR=192.0.2.7')).toBe(
      '503 5.5.1 Bad sequence of commands: XFORWARD not allowed during a mail transaction\r\n',
    );
    client.close();
  });
});
