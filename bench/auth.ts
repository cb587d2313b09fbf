/**
 * Row (ma): what mail authentication costs per message. The same Sirocco sink with `mailAuth` off
 * and on, a DNS server on loopback publishing the sender's SPF, DMARC and two DKIM keys, and one
 * 1 KiB message signed with both (RSA-2048 and Ed25519) sent 2,000 times over 10 persistent
 * connections. Server CPU per message, both ways, and their ratio.
 */
import { fork } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { DkimSigner } from '../lib/entry/outbound.js';
import { startDns } from '../spec/helpers/dns.js';
import { median } from './load.js';

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url));
const CONNECTIONS = 10;
const PER_CONNECTION = 200;

interface Stats {
  messages: number;
  cpuMicros: number;
}

/** One message, signed by both keys, and the DNS records that verify it. */
async function signedMessage(): Promise<{ message: Buffer; zone: Parameters<typeof startDns>[0] }> {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  const signer = new DkimSigner([
    { domain: 'sender.bench', selector: 'rsa', privateKey: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
    { domain: 'sender.bench', selector: 'ed', privateKey: ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
  ]);
  const body = `${'Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n'.repeat(16)}`;
  const message = await signer.sign(
    Buffer.from(
      `From: News <news@sender.bench>\r\nTo: rcpt@bench.test\r\nSubject: Bench\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n` +
        `Message-ID: <1@sender.bench>\r\n\r\n${body}`,
    ),
  );
  const rsaPublic = rsa.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const edPublic = Buffer.from(ed.publicKey.export({ format: 'jwk' }).x ?? '', 'base64url').toString('base64');
  return {
    message,
    zone: {
      'sender.bench': { txt: ['v=spf1 ip4:127.0.0.1 -all'] },
      '_dmarc.sender.bench': { txt: ['v=DMARC1; p=reject'] },
      'rsa._domainkey.sender.bench': { txt: [`v=DKIM1; k=rsa; p=${rsaPublic}`] },
      'ed._domainkey.sender.bench': { txt: [`v=DKIM1; k=ed25519; p=${edPublic}`] },
    },
  };
}

/** Sends `count` messages over one connection, one after another; resolves when the last 250 came. */
function sendOver(port: number, message: Buffer, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    const data = Buffer.concat([message, Buffer.from('.\r\n')]);
    let buffered = '';
    let step = 0;
    let sent = 0;
    const next = (): void => {
      if (step === 0) socket.write('EHLO bench.client\r\n');
      else if (step === 1) socket.write('MAIL FROM:<news@sender.bench>\r\nRCPT TO:<rcpt@bench.test>\r\nDATA\r\n');
      else socket.write(data);
    };
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        const end = buffered.indexOf('\r\n');
        if (end === -1) return;
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (line[3] === '-') continue;
        if (/^[45]/.test(line)) return reject(new Error(`bench (ma): ${line}`));
        if (line.startsWith('220') && step === 0) {
          next();
        } else if (line.startsWith('250') && step === 0) {
          step = 1;
          next();
        } else if (line.startsWith('354')) {
          step = 2;
          next();
        } else if (line.startsWith('250 2.0.0')) {
          sent++;
          if (sent === count) {
            socket.end('QUIT\r\n');
            return resolve();
          }
          step = 1;
          next();
        }
      }
    });
  });
}

/** A bench server (`mailauth=DNS` or not): its CPU per message over the load. */
async function cpuPerMessage(message: Buffer, extra: string[]): Promise<number> {
  const child = fork(SERVER, ['sirocco', ...extra], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = (): Promise<Stats> =>
    new Promise((resolve) => {
      child.once('message', (m) => resolve(m as Stats));
      child.send('stats');
    });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: unknown) => resolve((m as { port: number }).port));
      child.once('exit', (code) => reject(new Error(`bench server exited with ${String(code)}`)));
    });
    // Warm-up: code compiled, DNS answers cached, as on a server that has been running.
    await Promise.all(Array.from({ length: CONNECTIONS }, () => sendOver(port, message, 20)));
    const before = await ask();
    await Promise.all(Array.from({ length: CONNECTIONS }, () => sendOver(port, message, PER_CONNECTION)));
    const after = await ask();
    const done = after.messages - before.messages;
    if (done !== CONNECTIONS * PER_CONNECTION) throw new Error(`bench (ma): ${done} messages arrived`);
    return (after.cpuMicros - before.cpuMicros) / done;
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

/** The row, its rounds alternating off and on. */
export async function authRow(rounds: number): Promise<string[]> {
  const { message, zone } = await signedMessage();
  const dns = await startDns(zone);
  try {
    const off: number[] = [];
    const on: number[] = [];
    for (let i = 0; i < rounds; i++) {
      off.push(await cpuPerMessage(message, []));
      on.push(await cpuPerMessage(message, [`mailauth=${dns.server}`]));
    }
    const ratios = on.map((x, i) => x / (off[i] ?? x));
    return [
      '',
      "| scenario | metric | mailAuth off | mailAuth on | ratio on/off | rounds' range |",
      '|---|---|---|---|---|---|',
      `| (ma) ${CONNECTIONS * PER_CONNECTION} × 1 KiB, DKIM-signed (RSA-2048 + Ed25519), SPF and DMARC, persistent, DNS on loopback | server CPU µs/message | ${median(off).toFixed(0)} | ${median(on).toFixed(0)} | ${median(ratios).toFixed(2)}× | ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} |`,
    ];
  } finally {
    await dns.close();
  }
}
