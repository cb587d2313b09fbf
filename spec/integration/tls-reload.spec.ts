/** reloadTLS(): a renewed certificate for new connections, without a restart; open ones keep theirs. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../helpers/raw-client.js';
import { makeCertificates, type TestCertificates } from '../helpers/certs.js';
import { closeServers, startServer } from '../helpers/server.js';

let certs: TestCertificates;
beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs.cleanup());
afterEach(closeServers);

async function secured(port: number, servername: string): Promise<{ client: RawClient; cn: unknown }> {
  const client = await RawClient.ehlo(port);
  expect(await client.command('STARTTLS')).toBe('220 2.0.0 Ready to start TLS\r\n');
  const socket = await client.startTls({ ca: certs.ca, servername });
  return { client, cn: socket.getPeerCertificate().subject.CN };
}

describe('reloadTLS', () => {
  it('serves the new certificate to new connections while open ones keep theirs', async () => {
    const { port, server } = await startServer(undefined, { tls: { key: certs.key, cert: certs.cert } });
    const before = await secured(port, 'localhost');
    expect(before.cn).toBe('localhost');
    server.reloadTLS({ key: certs.otherKey, cert: certs.otherCert });
    const after = await secured(port, 'other.test');
    expect(after.cn).toBe('other.test');
    expect(await before.client.command('EHLO c.test')).toMatch(/^250-mx\.test greets c\.test\r\n/);
    expect(await before.client.command('NOOP')).toBe('250 2.0.0 Ok\r\n');
  });

  it('throws and changes nothing when the new key does not fit the certificate', async () => {
    const { port, server } = await startServer(undefined, { tls: { key: certs.key, cert: certs.cert } });
    expect(() => server.reloadTLS({ key: certs.otherKey, cert: certs.cert })).toThrow(/tls/);
    expect((await secured(port, 'localhost')).cn).toBe('localhost');
  });
});
