/**
 * TLS for connections: one secure context (and optional SNI contexts) built once per server;
 * `upgrade` turns a plaintext socket into a server-side TLS socket, for STARTTLS (RFC 3207) and
 * for implicit TLS (RFC 8314).
 */
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { SNIResolver, TLSSettings } from '../app/settings.js';
import type { TLSInfo } from '../protocol/session-info.js';

export class TLSConfig {
  readonly #context: SecureContext;
  readonly #sni: SNIResolver | undefined;
  readonly #requestCert: boolean;

  constructor(settings: TLSSettings, requestCert: boolean) {
    const { sni, ...options } = settings;
    this.#context = contextOrThrow('tls', options);
    this.#requestCert = requestCert;
    if (typeof sni === 'function') {
      this.#sni = sni;
    } else if (sni !== undefined) {
      const contexts = new Map(
        Object.entries(sni).map(([name, opts]) => [name.toLowerCase(), contextOrThrow(`tls.sni['${name}']`, { ...options, ...opts })]),
      );
      this.#sni = (servername) => {
        const name = servername.toLowerCase();
        return contexts.get(name) ?? contexts.get(`*${name.slice(name.indexOf('.'))}`);
      };
    }
  }

  /** Wraps `socket` as the server side of a TLS connection; the handshake starts at once. */
  upgrade(socket: Socket): TLSSocket {
    const sni = this.#sni;
    return new TLSSocket(socket, {
      isServer: true,
      secureContext: this.#context,
      requestCert: this.#requestCert,
      rejectUnauthorized: false,
      ...(sni === undefined
        ? {}
        : {
            SNICallback: (servername: string, done: (err: Error | null, ctx?: SecureContext) => void) => {
              Promise.resolve(sni(servername)).then(
                (found) => done(null, found === undefined ? this.#context : isContext(found) ? found : createSecureContext(found)),
                (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
              );
            },
          }),
    });
  }
}

/** Builds a secure context; an unusable key or certificate names the setting it came from. */
function contextOrThrow(field: string, options: SecureContextOptions): SecureContext {
  try {
    return createSecureContext(options);
  } catch (err) {
    throw new Error(`${field}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function isContext(value: SecureContext | SecureContextOptions): value is SecureContext {
  return typeof (value as SecureContext).context === 'object' && (value as SecureContext).context !== null;
}

/** Reads the TLS facts off a socket whose handshake is done. */
export function tlsInfo(socket: TLSSocket): TLSInfo {
  const cert = socket.getPeerCertificate();
  const hasCert = cert !== null && typeof cert === 'object' && Object.keys(cert).length > 0;
  return Object.freeze({
    protocol: socket.getProtocol() ?? 'unknown',
    cipher: socket.getCipher().standardName,
    servername:
      typeof (socket as { servername?: unknown }).servername === 'string'
        ? (socket as unknown as { servername: string }).servername
        : undefined,
    clientCertificate: hasCert ? (cert as unknown as Record<string, unknown>) : undefined,
    clientCertificateAuthorized: hasCert && verified(socket),
  });
}

/**
 * Whether the client certificate verified against the configured `ca`. Node computes `authorized`
 * only for sockets a `tls.Server` accepted; a socket upgraded in place (STARTTLS) needs the same
 * check Node's server makes, on the handle's verification result.
 */
function verified(socket: TLSSocket): boolean {
  if (socket.authorized) return true;
  const handle = (socket as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
  return typeof handle?.verifyError === 'function' && handle.verifyError() === null;
}

/** Whether a read starts with a TLS handshake record (its first byte, 0x16): a TLS client on a plaintext port. */
export function startsTlsHandshake(chunk: Buffer): boolean {
  return chunk[0] === 0x16;
}
