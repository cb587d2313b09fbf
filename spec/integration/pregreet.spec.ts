/** Early talkers (postscreen's pregreet test): greetDelay and greetTeaser over real sockets. */
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler } from '../../lib/index.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer } from '../helpers/server.js';

afterEach(closeServers);

describe('greetDelay', () => {
  it('greets a client that waits, and turns away one that speaks first with 554 5.5.1', async () => {
    const { port } = await startServer(RequestHandler, { greetDelay: 200 });
    const patient = await RawClient.connect(port);
    expect(await patient.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    expect(await patient.command('EHLO c.test')).toMatch(/^250-mx\.test greets c\.test\r\n/);
    const eager = await RawClient.connect(port);
    eager.write('EHLO spam.test\r\n');
    expect(await eager.closedByServer()).toBe('554 5.5.1 Protocol error: client spoke before the greeting\r\n');
  });

  it('sends the 220- teaser at once; a client that answers the teaser is turned away after the greeting ends', async () => {
    const { port } = await startServer(RequestHandler, { greetDelay: 200, greetTeaser: true });
    const patient = await RawClient.connect(port);
    expect(await patient.reply()).toBe('220-mx.test ESMTP Sirocco\r\n220 mx.test ESMTP Sirocco\r\n');
    expect(await patient.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
    const eager = await RawClient.connect(port);
    await new Promise<void>((resolve) => eager.socket.once('data', () => resolve()));
    eager.write('EHLO spam.test\r\n');
    expect(await eager.closedByServer()).toBe(
      '220-mx.test ESMTP Sirocco\r\n220 mx.test ESMTP Sirocco\r\n554 5.5.1 Protocol error: client spoke before the greeting\r\n',
    );
  });

  it('starts its clock after the PROXY header', async () => {
    const { port } = await startServer(RequestHandler, { greetDelay: 200, proxyFrom: ['127.0.0.1'] });
    const client = await RawClient.connect(port);
    client.write('PROXY TCP4 192.0.2.7 10.0.0.1 51234 25\r\n');
    expect(await client.reply()).toBe('220 mx.test ESMTP Sirocco\r\n');
    const eager = await RawClient.connect(port);
    eager.write('PROXY TCP4 192.0.2.8 10.0.0.1 51234 25\r\nEHLO spam.test\r\n');
    expect(await eager.closedByServer()).toBe('554 5.5.1 Protocol error: client spoke before the greeting\r\n');
  });
});
