/**
 * Turns a connection's plaintext socket into TLS in place: for STARTTLS (RFC 3207) after the 220,
 * and for implicit TLS (RFC 8314) before the greeting. The plaintext socket stops being read
 * first, so no byte the client sent in plaintext is ever read as if it came inside TLS.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { TLSInfo } from '../protocol/session-info.js';
import { stopReading } from './reader.js';
import { tlsInfo, type TLSConfig } from './tls.js';

/** What the connection hears of the handshake. */
export interface UpgradeEvents {
  /** The handshake is done. */
  secure(socket: TLSSocket, info: TLSInfo): void;
  /** The socket closed (a failed or timed-out handshake ends here too). */
  close(): void;
}

/**
 * Starts the server side of a TLS handshake on `plain`, bounded by `timeoutMs`. `early` is what
 * was already read of the handshake (the bytes after a PROXY header): TLS reads it first.
 */
export function upgradeSocket(
  plain: Socket,
  config: TLSConfig,
  timeoutMs: number,
  log: Logger,
  early: Buffer | undefined,
  events: UpgradeEvents,
): void {
  stopReading(plain);
  if (early !== undefined && early.length > 0) plain.unshift(early);
  const secure = config.upgrade(plain);
  const timer = setTimeout(() => {
    log.info('TLS handshake timed out');
    secure.destroy();
  }, timeoutMs);
  secure.on('error', (err: Error) => {
    clearTimeout(timer);
    log.info({ reason: err.message }, 'TLS failed');
    secure.destroy();
  });
  secure.on('close', () => {
    clearTimeout(timer);
    events.close();
  });
  secure.once('secure', () => {
    clearTimeout(timer);
    const info = tlsInfo(secure);
    log.debug({ protocol: info.protocol, cipher: info.cipher }, 'TLS established');
    events.secure(secure, info);
  });
}
