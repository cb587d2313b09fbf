/**
 * DKIM keys made by the test, and Python's dkimpy (Debian's python3-dkim, with python3-nacl for
 * Ed25519) as the independent signer and verifier, its DNS answered from the test's own records.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './processes.js';

/** Debian's python3, where python3-dkim is installed (not a python3 of the PATH's own). */
const PYTHON = '/usr/bin/python3';

/** A signing key: what dkimpy takes, and the DNS TXT record that publishes it. */
export interface TestKey {
  readonly algorithm: 'rsa' | 'ed25519';
  /** dkimpy's private key: a PEM for RSA, the base64 seed for Ed25519. */
  readonly private: string;
  /** The TXT record at `<selector>._domainkey.<domain>`. */
  readonly record: string;
  /** The private key as a PEM, for Sirocco's own signing. */
  readonly pem: string;
}

export function rsaKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return { algorithm: 'rsa', private: pem, pem, record: `v=DKIM1; k=rsa; p=${p}` };
}

export function ed25519Key(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d ?? '', 'base64url').toString('base64');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url').toString('base64');
  return {
    algorithm: 'ed25519',
    private: seed,
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    record: `v=DKIM1; k=ed25519; p=${raw}`,
  };
}

/** Why dkimpy cannot run here, or `undefined` when it can. */
export function dkimpyMissing(): string | undefined {
  if (!existsSync(PYTHON)) return `no ${PYTHON}`;
  return undefined;
}

function python(script: string, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, ['-c', script], { timeout: 20_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`dkimpy failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    child.stdin?.end(input);
  });
}

const COMMON = `
import base64, json, sys
import dkim
job = json.loads(sys.stdin.read())
message = base64.b64decode(job['message'])
`;

/** The message signed by dkimpy with each key in turn (the last signature on top). */
export async function dkimpySign(message: Buffer, domain: string, keys: readonly { selector: string; key: TestKey }[]): Promise<Buffer> {
  const script = `${COMMON}
for k in job['keys']:
    algorithm = b'ed25519-sha256' if k['algorithm'] == 'ed25519' else b'rsa-sha256'
    sig = dkim.sign(message, k['selector'].encode(), job['domain'].encode(), k['private'].encode(),
                    include_headers=[b'from', b'to', b'subject', b'date'], signature_algorithm=algorithm)
    message = sig + message
sys.stdout.write(base64.b64encode(message).decode())
`;
  const job = {
    message: message.toString('base64'),
    domain,
    keys: keys.map(({ selector, key }) => ({ selector, algorithm: key.algorithm, private: key.private })),
  };
  return Buffer.from(await python(script, JSON.stringify(job)), 'base64');
}

/** dkimpy's verdict on every signature of `message`, DNS answered from `records` (name → TXT). */
export async function dkimpyVerify(message: Buffer, records: Record<string, string>): Promise<boolean[]> {
  const script = `${COMMON}
records = job['records']
def dnsfunc(name, timeout=5):
    return records.get(name.decode().rstrip('.'), '').encode()
d = dkim.DKIM(message)
sigs = [line for line in message.split(b'\\r\\n\\r\\n')[0].split(b'\\r\\n') if line.lower().startswith(b'dkim-signature:')]
def check(i):
    try:
        return bool(d.verify(idx=i, dnsfunc=dnsfunc))
    except dkim.ValidationError:
        return False
print(json.dumps([check(i) for i in range(len(sigs))]))
`;
  return JSON.parse(await python(script, JSON.stringify({ message: message.toString('base64'), records }))) as boolean[];
}

/** The message with the next ARC set on top, sealed by dkimpy for `domain` (RSA key); it must carry an Authentication-Results field of `srvId`. */
export async function dkimpyArcSeal(message: Buffer, domain: string, selector: string, key: TestKey, srvId: string): Promise<Buffer> {
  const script = `${COMMON}
fields = dkim.arc_sign(message, job['selector'].encode(), job['domain'].encode(), job['private'].encode(), job['srvId'].encode(),
                       include_headers=[b'from', b'to', b'subject', b'date'])
sys.stdout.write(base64.b64encode(b''.join(fields) + message).decode())
`;
  const job = { message: message.toString('base64'), domain, selector, private: key.private, srvId };
  return Buffer.from(await python(script, JSON.stringify(job)), 'base64');
}

/** dkimpy's verdict on the message's ARC chain (`pass`, `fail` or `none`), DNS answered from `records`. */
export async function dkimpyArcVerify(message: Buffer, records: Record<string, string>): Promise<string> {
  const script = `${COMMON}
records = job['records']
def dnsfunc(name, timeout=5):
    return records.get(name.decode().rstrip('.'), '').encode()
cv, results, reason = dkim.arc_verify(message, dnsfunc=dnsfunc)
print(cv.decode())
`;
  return (await python(script, JSON.stringify({ message: message.toString('base64'), records }))).trim();
}

const OPENDKIM_TESTMSG = '/usr/sbin/opendkim-testmsg';

/**
 * Why OpenDKIM cannot verify here, or `undefined` when it can. `opendkim-testmsg` asks the
 * system resolver (port 53) for keys; the test gives it a DNS of its own in a network and mount
 * namespace (`unshare`, as root), where 127.0.0.1:53 is the test's and /etc/resolv.conf names it.
 */
export async function opendkimMissing(): Promise<string | undefined> {
  if (!existsSync(OPENDKIM_TESTMSG)) return `no ${OPENDKIM_TESTMSG} (Debian: opendkim-tools)`;
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return 'not root on Linux: no namespace for a DNS server on port 53';
  if (!existsSync('/usr/sbin/ip') && !existsSync('/sbin/ip')) return 'no ip (Debian: iproute2) to bring up the namespace loopback';
  return new Promise((resolve) =>
    execFile('unshare', ['-n', '-m', 'true'], { timeout: 5000 }, (err) =>
      resolve(err ? `unshare -n -m is refused here (${err.message.trim()})` : undefined),
    ),
  );
}

/**
 * Verifies `message` with OpenDKIM's `opendkim-testmsg`, its keys from `records` (name → TXT).
 * Resolves to `pass`, or to what OpenDKIM said when it did not verify.
 */
export async function opendkimVerify(message: Buffer, records: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'sirocco-opendkim-'));
  try {
    writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:2 attempts:2\n');
    writeFileSync(join(dir, 'zone.json'), JSON.stringify(Object.fromEntries(Object.entries(records).map(([n, t]) => [n, { txt: [t] }]))));
    writeFileSync(join(dir, 'message'), message);
    // In the namespace: loopback up, our resolv.conf, the DNS server (ended on exit), then OpenDKIM.
    const script = [
      'ip link set lo up',
      'mount --bind "$D/resolv.conf" /etc/resolv.conf',
      `timeout 30 "${process.execPath}" --import tsx spec/helpers/dns-serve.ts "$D/zone.json" 53 "$D/ready" &`,
      'DNS=$!',
      "trap 'kill $DNS 2>/dev/null' EXIT",
      'i=0; while [ ! -f "$D/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done',
      `${OPENDKIM_TESTMSG} < "$D/message"`,
    ].join('\n');
    return await new Promise((resolve, reject) => {
      execFile(
        'unshare',
        ['-n', '-m', 'sh', '-c', script],
        { cwd: ROOT, env: { ...process.env, D: dir }, timeout: 40_000 },
        (err, stdout, stderr) => {
          if (err === null) resolve('pass');
          else if (typeof err.code === 'number') resolve(`${stdout}${stderr}`.trim());
          else reject(new Error(err.message));
        },
      );
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
