/**
 * The HTTPS requests a destination's DNS asks for (its MTA-STS policy, its TLS report collector):
 * the name resolved with the queue's lookup, never sent to this host's own networks unless the
 * operator allows it, verified TLS, no redirect, 2xx only, bounded in time and in the answer's size.
 */
import { request } from 'node:https';
import { isIP } from 'node:net';
import { isPrivateAddress } from './private-address.js';

/** One bounded request. */
export interface BoundedRequest {
  /** A host name (resolved with `lookup`) or an IP address. */
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** `GET` without a body, or `POST` with `body`. */
  readonly body?: { readonly type: string; readonly bytes: Buffer } | undefined;
  /** The answer is read up to this many bytes (past it the request fails). */
  readonly maxBytes: number;
  readonly timeoutMs: number;
  /** Extra TLS options (`ca` for a private CA); the certificate is always verified. */
  readonly tls?: Readonly<Record<string, unknown>> | undefined;
  /** The DNS lookup (A, then AAAA), as mailauth asks for it. */
  readonly lookup: (name: string, type: string) => Promise<never[]>;
  /** Whether the host may be at a loopback, private or link-local address. Default false. */
  readonly privateAddresses?: boolean | undefined;
}

/**
 * Makes the request; resolves to the answer's body. Rejects with the reason: no address, a
 * private one, an answer other than 2xx (`host[:port] answered 404`), too large or too slow, or
 * the TLS error itself (its `code` kept, for RFC 8460's failure types).
 */
export async function boundedHttps(r: BoundedRequest): Promise<Buffer> {
  const literal = r.host.replace(/^\[|\]$/g, '');
  let address = literal;
  if (isIP(literal) === 0) {
    const found = (await r
      .lookup(literal, 'A')
      .catch(() => r.lookup(literal, 'AAAA'))
      .catch(() => [])) as unknown as string[];
    if (found[0] === undefined) throw new Error(`${r.host} has no address`);
    address = found[0];
  }
  if (r.privateAddresses !== true && isPrivateAddress(address))
    throw new Error(`${r.host} is a private address (${address}): not ${r.body === undefined ? 'asked' : 'posted'}`);
  const label = r.port === 443 ? r.host : `${r.host}:${r.port}`;
  const slow = (): Error => new Error(`${label} took over ${r.timeoutMs} ms`);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...r.tls,
        host: address,
        servername: isIP(literal) === 0 ? literal : undefined,
        port: r.port,
        path: r.path,
        method: r.body === undefined ? 'GET' : 'POST',
        headers: { host: label, ...(r.body === undefined ? {} : { 'content-type': r.body.type, 'content-length': r.body.bytes.length }) },
        rejectUnauthorized: true,
        timeout: r.timeoutMs,
      },
      (res) => {
        const code = res.statusCode ?? 0;
        if (code < 200 || code >= 300) {
          res.resume();
          return reject(new Error(`${label} answered ${code}`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > r.maxBytes) req.destroy(new Error(`${label} answered more than ${r.maxBytes} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      },
    );
    const deadline = setTimeout(() => req.destroy(slow()), r.timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => req.destroy(slow()));
    req.on('error', reject);
    req.end(r.body?.bytes);
  });
}
