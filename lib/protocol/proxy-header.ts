/**
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2): what a load balancer
 * sends before the client's first byte, naming the client's address. Pure: the bytes received so
 * far in, `more` (keep reading), an error text, or the header and how many bytes it took.
 *
 * Version 1 is one text line of at most 107 bytes; version 2 is binary, 16 bytes and then as many
 * as its length field says, with type-length-value fields (TLVs) after the addresses. The TLVs
 * read are ALPN, AUTHORITY, UNIQUE_ID, SSL with its sub-fields, and AWS's VPC endpoint (0xEA,
 * kept raw); others are skipped. A header over {@link MAX_PROXY_HEADER} bytes is an error.
 */
import { isIPv4, isIPv6 } from './address.js';

/** The longest header taken (version 2 allows 65,551 bytes; nothing real comes near 4 KiB). */
export const MAX_PROXY_HEADER = 4096;
/** Version 1's limit, CRLF included. */
const V1_MAX = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');

/**
 * The TLS facts a proxy that ended TLS passes on (PP2_TYPE_SSL and its sub-types).
 *
 * @example
 * ```ts
 * const viaTls = this.request.session.proxy?.ssl?.version; // 'TLSv1.3' when HAProxy ended TLS
 * ```
 */
export interface ProxySsl {
  /** The client field: bit 0 TLS, bit 1 a certificate in this connection, bit 2 in the session. */
  readonly client: number;
  /** 0 when the client's certificate was verified. */
  readonly verify: number;
  /** The TLS version, such as `TLSv1.3`. */
  readonly version: string | undefined;
  /** The client certificate's CN, when one was given. */
  readonly commonName: string | undefined;
  /** The cipher suite. */
  readonly cipher: string | undefined;
  /** The client certificate's signature algorithm. */
  readonly signatureAlgorithm: string | undefined;
  /** The client certificate's key algorithm. */
  readonly keyAlgorithm: string | undefined;
}

/**
 * What the PROXY header said, beyond the addresses (which replace the connection's own).
 *
 * @example
 * ```ts
 * const { version, command, uniqueId } = this.request.session.proxy ?? {};
 * ```
 */
export interface ProxyInfo {
  /** 1 for the text header, 2 for the binary one. */
  readonly version: 1 | 2;
  /** `LOCAL`: the proxy speaking for itself (a health check); the connection's own addresses stand. */
  readonly command: 'PROXY' | 'LOCAL';
  /** The address of the proxy the connection came from. */
  readonly proxyAddress: string;
  /** The protocol the client negotiated with the proxy (ALPN), when the proxy ended TLS. */
  readonly alpn: string | undefined;
  /** The host name the client asked the proxy for (TLS SNI). */
  readonly authority: string | undefined;
  /** The proxy's id for the connection (HAProxy's `unique-id-format`), up to 128 bytes. */
  readonly uniqueId: Buffer | undefined;
  /** TLS facts, when the proxy ended TLS. */
  readonly ssl: ProxySsl | undefined;
  /** AWS's PP2_TYPE_AWS (0xEA) value as sent, for example the VPC endpoint id. */
  readonly aws: Buffer | undefined;
}

/** A parsed header: the client's and the destination's addresses when it named them. */
export interface ProxyHeader {
  readonly version: 1 | 2;
  readonly command: 'PROXY' | 'LOCAL';
  /** `undefined` for `UNKNOWN` (v1), `LOCAL` or an address family not carried (v2). */
  readonly source: { readonly address: string; readonly port: number } | undefined;
  readonly destination: { readonly address: string; readonly port: number } | undefined;
  readonly alpn: string | undefined;
  readonly authority: string | undefined;
  readonly uniqueId: Buffer | undefined;
  readonly ssl: ProxySsl | undefined;
  readonly aws: Buffer | undefined;
}

export type ProxyParse = { readonly more: true } | { readonly error: string } | { readonly header: ProxyHeader; readonly length: number };

const MORE = { more: true } as const;

/** Whether `bytes` (the start of a connection) can still become a PROXY header. */
export function looksLikeProxyHeader(bytes: Buffer): boolean {
  const n = Math.min(bytes.length, 12);
  return (
    bytes.subarray(0, Math.min(n, 6)).equals(V1_PREFIX.subarray(0, Math.min(n, 6))) ||
    bytes.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n))
  );
}

/** Parses the header at the start of `bytes`. */
export function parseProxyHeader(bytes: Buffer): ProxyParse {
  if (bytes.length === 0) return MORE;
  const v2Prefix = Math.min(bytes.length, V2_SIGNATURE.length);
  if (bytes.subarray(0, v2Prefix).equals(V2_SIGNATURE.subarray(0, v2Prefix))) return bytes.length < 16 ? MORE : parseV2(bytes);
  const v1Prefix = Math.min(bytes.length, V1_PREFIX.length);
  if (bytes.subarray(0, v1Prefix).equals(V1_PREFIX.subarray(0, v1Prefix))) return parseV1(bytes);
  return { error: 'not a PROXY protocol header' };
}

const PORT = /^(0|[1-9]\d{0,4})$/;

function parseV1(bytes: Buffer): ProxyParse {
  const end = bytes.indexOf('\r\n');
  if (end === -1) return bytes.length >= V1_MAX ? { error: 'PROXY v1 header longer than 107 bytes' } : MORE;
  if (end + 2 > V1_MAX) return { error: 'PROXY v1 header longer than 107 bytes' };
  const words = bytes.toString('latin1', 0, end).split(' ');
  const none = { alpn: undefined, authority: undefined, uniqueId: undefined, ssl: undefined, aws: undefined };
  if (words[1] === 'UNKNOWN') {
    return { header: { version: 1, command: 'PROXY', source: undefined, destination: undefined, ...none }, length: end + 2 };
  }
  if (words.length !== 6 || (words[1] !== 'TCP4' && words[1] !== 'TCP6')) return { error: 'malformed PROXY v1 header' };
  const [, family, src, dst, srcPort, dstPort] = words as [string, string, string, string, string, string];
  const valid = (a: string): boolean => (family === 'TCP4' ? isIPv4(a) : isIPv6(a));
  if (!valid(src) || !valid(dst) || !PORT.test(srcPort) || !PORT.test(dstPort) || Number(srcPort) > 65535 || Number(dstPort) > 65535) {
    return { error: 'malformed PROXY v1 header' };
  }
  return {
    header: {
      version: 1,
      command: 'PROXY',
      source: { address: src, port: Number(srcPort) },
      destination: { address: dst, port: Number(dstPort) },
      ...none,
    },
    length: end + 2,
  };
}

function parseV2(bytes: Buffer): ProxyParse {
  const verCmd = bytes[12] ?? 0;
  if (verCmd >> 4 !== 2) return { error: 'PROXY v2 header with an unknown version' };
  const command = verCmd & 0x0f;
  if (command > 1) return { error: 'PROXY v2 header with an unknown command' };
  const family = bytes[13] ?? 0;
  // The specification defines families 0-3 and transports 0-2; anything else "must be rejected
  // as invalid by receivers". A mail server takes stream connections only.
  if (family >> 4 > 3) return { error: 'PROXY v2 header with an undefined address family' };
  if ((family & 0x0f) > 1) return { error: 'PROXY v2 header with a transport other than a stream' };
  const length = bytes.readUInt16BE(14);
  if (16 + length > MAX_PROXY_HEADER) return { error: `PROXY v2 header longer than ${MAX_PROXY_HEADER} bytes` };
  if (bytes.length < 16 + length) return MORE;
  const body = bytes.subarray(16, 16 + length);
  let source: ProxyHeader['source'];
  let destination: ProxyHeader['destination'];
  let tlvStart: number;
  switch (family >> 4) {
    case 0x1: // AF_INET: 4 + 4 + 2 + 2
      if (body.length < 12) return { error: 'PROXY v2 header too short for its IPv4 addresses' };
      source = { address: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) };
      destination = { address: [...body.subarray(4, 8)].join('.'), port: body.readUInt16BE(10) };
      tlvStart = 12;
      break;
    case 0x2: // AF_INET6: 16 + 16 + 2 + 2
      if (body.length < 36) return { error: 'PROXY v2 header too short for its IPv6 addresses' };
      source = { address: ipv6(body.subarray(0, 16)), port: body.readUInt16BE(32) };
      destination = { address: ipv6(body.subarray(16, 32)), port: body.readUInt16BE(34) };
      tlvStart = 36;
      break;
    case 0x3: // AF_UNIX: 108 + 108, no address to use
      if (body.length < 216) return { error: 'PROXY v2 header too short for its Unix addresses' };
      tlvStart = 216;
      break;
    default: // AF_UNSPEC: nothing, and what follows is ignored
      tlvStart = body.length;
  }
  const tlvs = parseTlvs(body.subarray(tlvStart));
  if ('error' in tlvs) return tlvs;
  const local = command === 0;
  return {
    header: {
      version: 2,
      command: local ? 'LOCAL' : 'PROXY',
      source: local ? undefined : source,
      destination: local ? undefined : destination,
      ...tlvs,
    },
    length: 16 + length,
  };
}

function ipv6(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // The canonical short form (RFC 5952), as Node's own socket addresses are written.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

type Tlvs = Pick<ProxyHeader, 'alpn' | 'authority' | 'uniqueId' | 'ssl' | 'aws'>;

function parseTlvs(bytes: Buffer): Tlvs | { readonly error: string } {
  const found: { -readonly [K in keyof Tlvs]: Tlvs[K] } = {
    alpn: undefined,
    authority: undefined,
    uniqueId: undefined,
    ssl: undefined,
    aws: undefined,
  };
  for (let i = 0; i < bytes.length;) {
    if (i + 3 > bytes.length) return { error: 'PROXY v2 TLV cut short' };
    const type = bytes[i] ?? 0;
    const length = bytes.readUInt16BE(i + 1);
    const value = bytes.subarray(i + 3, i + 3 + length);
    if (value.length !== length) return { error: 'PROXY v2 TLV longer than the header' };
    i += 3 + length;
    switch (type) {
      case 0x01:
        found.alpn = value.toString('latin1');
        break;
      case 0x02:
        found.authority = value.toString('utf8');
        break;
      case 0x05:
        if (length > 128) return { error: 'PROXY v2 UNIQUE_ID longer than 128 bytes' };
        found.uniqueId = Buffer.from(value);
        break;
      case 0x20: {
        const ssl = parseSsl(value);
        if (ssl === undefined) return { error: 'malformed PROXY v2 SSL TLV' };
        found.ssl = ssl;
        break;
      }
      case 0xea:
        found.aws = Buffer.from(value);
        break;
      default: // CRC32C, NOOP, NETNS and custom types: not used
    }
  }
  return found;
}

function parseSsl(value: Buffer): ProxySsl | undefined {
  if (value.length < 5) return undefined;
  const sub = parseTlvPairs(value.subarray(5));
  if (sub === undefined) return undefined;
  const text = (type: number): string | undefined => sub.get(type)?.toString('utf8');
  return {
    client: value[0] ?? 0,
    verify: value.readUInt32BE(1),
    version: text(0x21),
    commonName: text(0x22),
    cipher: text(0x23),
    signatureAlgorithm: text(0x24),
    keyAlgorithm: text(0x25),
  };
}

function parseTlvPairs(bytes: Buffer): Map<number, Buffer> | undefined {
  const pairs = new Map<number, Buffer>();
  for (let i = 0; i < bytes.length;) {
    if (i + 3 > bytes.length) return undefined;
    const length = bytes.readUInt16BE(i + 1);
    if (i + 3 + length > bytes.length) return undefined;
    pairs.set(bytes[i] ?? 0, bytes.subarray(i + 3, i + 3 + length));
    i += 3 + length;
  }
  return pairs;
}
