/** Test certificates, made at test time with openssl: a CA, server certificates, a client one. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  readonly ca: Buffer;
  readonly caFile: string;
  readonly key: Buffer;
  readonly cert: Buffer;
  /** A second server certificate, for SNI: CN and SAN other.test. */
  readonly otherKey: Buffer;
  readonly otherCert: Buffer;
  readonly clientKey: Buffer;
  readonly clientCert: Buffer;
  readonly dir: string;
  cleanup(): void;
}

/** A new P-256 key, unencrypted. */
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 20_000 });
}

function issue(dir: string, name: string, cn: string, san: string): void {
  openssl(dir, ['req', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'sirocco-certs-'));
  openssl(dir, ['req', '-x509', ...NEW_KEY, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=Sirocco Test CA']);
  issue(dir, 'server', 'localhost', 'DNS:localhost,DNS:mx.test,IP:127.0.0.1');
  issue(dir, 'other', 'other.test', 'DNS:other.test');
  issue(dir, 'client', 'client.test', 'DNS:client.test');
  const read = (f: string): Buffer => readFileSync(join(dir, f));
  return {
    ca: read('ca.crt'),
    caFile: join(dir, 'ca.crt'),
    key: read('server.key'),
    cert: read('server.crt'),
    otherKey: read('other.key'),
    otherCert: read('other.crt'),
    clientKey: read('client.key'),
    clientCert: read('client.crt'),
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** One more server certificate from the test CA, for `names` (DNS names). */
export function serverCertificate(certs: TestCertificates, file: string, names: readonly string[]): { key: Buffer; cert: Buffer } {
  issue(certs.dir, file, names[0] ?? 'localhost', names.map((n) => `DNS:${n}`).join(','));
  return { key: readFileSync(join(certs.dir, `${file}.key`)), cert: readFileSync(join(certs.dir, `${file}.crt`)) };
}
