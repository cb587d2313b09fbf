/**
 * The settings of the connection kit, which SMTP (`ApplicationSettings`) and POP3
 * (`Pop3Settings`) both extend: who the server is and its TLS, I/O (time, buffers, connections)
 * and the per-client limits. One schema for both protocols: the same names, the same checks, the
 * same refusal of an unknown key with the nearest name. A protocol may change a default (POP3's
 * `idleTimeout` is 10 minutes, RFC 1939 §3) or add a stricter bound, never loosen one.
 */
import 'reflect-metadata';
import { hostname as osHostname } from 'node:os';
import type { SecureContext, SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { LimitStore } from './limit-store.js';
import { IsArray, IsBoolean, IsInt, IsNotEmpty, IsObject, IsOptional, IsString, Matches, Max, Min } from './validators.js';

/**
 * Picks a context by the server name the client asked for (SNI); `undefined` = the default one.
 *
 * @example
 * ```ts
 * const sni: SNIResolver = async (servername) => (await certificates.lookup(servername)) ?? undefined;
 * new Application(Inbound, { tls: { key, cert, sni } });
 * ```
 */
export type SNIResolver = (
  servername: string,
) => SecureContext | SecureContextOptions | undefined | Promise<SecureContext | SecureContextOptions | undefined>;

/**
 * The `tls` setting: any `tls.SecureContextOptions` (key, cert, ca, ciphers, minVersion …) plus
 * `sni`, a map from server name (`*.example.com` allowed) to options, or a resolver function.
 *
 * @example
 * ```ts
 * const tls: TLSSettings = { key, cert, minVersion: 'TLSv1.2', sni: { 'mx.other.example': { key: otherKey, cert: otherCert } } };
 * new Application(Inbound, { tls });
 * ```
 */
export interface TLSSettings extends SecureContextOptions {
  /** Other certificates by server name (`*.example.com` matches one label), or a resolver. */
  readonly sni?: Readonly<Record<string, SecureContextOptions>> | SNIResolver;
}

/**
 * What every protocol's server is given, with SMTP's defaults.
 *
 * @example
 * ```ts
 * const kit: Partial<ConnectionKitSettings> = { hostname: 'mail.example.com', maxConnectionsPerIp: 10, tls: { key, cert } };
 * new Application(Inbound, kit);
 * new Pop3Server({ ...kit, store, authenticate });
 * ```
 */
export class ConnectionKitSettings {
  // Who the server is, and TLS.

  /** The name the server gives in its greeting and EHLO reply. */
  @IsString()
  @IsNotEmpty()
  @Matches(/^[^\s]+$/, { message: 'hostname must not contain white space' })
  hostname: string = osHostname() || 'localhost';

  /**
   * TLS key and certificate (any `tls.SecureContextOptions`, plus `sni`). With it the server offers
   * STARTTLS (RFC 3207), or speaks TLS from the first byte when `implicitTLS` is on.
   */
  @IsOptional()
  @IsObject()
  tls?: TLSSettings | undefined;

  /** SMTPS (RFC 8314, port 465): TLS from the first byte instead of STARTTLS. Needs `tls`. */
  @IsBoolean()
  implicitTLS: boolean = false;

  /** Milliseconds a TLS handshake may take. */
  @IsInt()
  @Min(1)
  handshakeTimeout: number = 10 * 1000;

  /** Offer AUTH without TLS. Off: passwords never cross the network in the clear. */
  @IsBoolean()
  allowInsecureAuth: boolean = false;

  // I/O: time, buffers and connections.

  /**
   * Milliseconds without a byte from the client (counted from the server's last reply, handlers'
   * time excluded) before `421 4.4.2`; RFC 5321 §4.5.3.2 suggests 5 minutes. The connection closes
   * at most an eighth of this later.
   */
  @IsInt()
  @Min(1)
  idleTimeout: number = 5 * 60 * 1000;

  /** Bytes of pipelined input held per connection while a handler runs; past it reading pauses. */
  @IsInt()
  @Min(1024)
  maxBufferedBytes: number = 256 * 1024;

  /** Open connections per process; the next one is answered `421 4.7.0` and closed. */
  @IsInt()
  @Min(1)
  maxConnections: number = 10000;

  /** The pino logger; a child logger per connection carries its id. Defaults to pino at `info`. */
  @IsOptional()
  logger?: Logger | undefined;

  // Per-client limits (see `ClientLimits`), counted in a `LimitStore`.

  /**
   * Open connections per client address (0: no limit); past it `421 4.7.0` and close. Counted
   * across the workers of `start(n)`. Default 20.
   */
  @IsInt()
  @Min(0)
  maxConnectionsPerIp: number = 20;

  /** Open connections per /24 (IPv4) or /64 (IPv6) network (0: no limit). Default 100. */
  @IsInt()
  @Min(0)
  maxConnectionsPerNet: number = 100;

  /** New connections per client address within `limitWindow` (0: no limit). Default 100. */
  @IsInt()
  @Min(0)
  connectionRatePerIp: number = 100;

  /** Failed AUTH attempts per client address within `limitWindow`; past it AUTH is `454 4.7.0`. Default 10. */
  @IsInt()
  @Min(0)
  authFailuresPerIp: number = 10;

  /** The window of `connectionRatePerIp` and `authFailuresPerIp`, in milliseconds. Default 60 s. */
  @IsInt()
  @Min(1)
  limitWindow: number = 60 * 1000;

  /**
   * How much of an IPv6 address names one client for the per-client counts: a host usually holds
   * a whole /64 and can rotate through it. 128 counts each address. Default 64.
   */
  @IsInt()
  @Min(32)
  @Max(128)
  ipv6PrefixLength: number = 64;

  /** Clients (addresses or CIDRs) the per-client limits leave alone. Default loopback. */
  @IsArray()
  @IsString({ each: true })
  limitExempt: string[] = ['127.0.0.0/8', '::1'];

  /**
   * Where the per-client counts live (see `LimitStore`). Default: this process's memory, or under
   * `start(n)` the primary's, shared by its workers.
   */
  @IsOptional()
  @IsObject()
  limitStore?: LimitStore | undefined;
}
