import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PROXY_HEADER, parseProxyHeader, type ProxyParse } from '../../lib/protocol/proxy-header.js';
import { ProxyPreamble, type PreambleStep } from '../../lib/server/proxy-preamble.js';
import { everySplit } from '../helpers/splits.js';

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const OWN = { id: 'c1', remoteAddress: '10.0.0.9', remotePort: 40000, localAddress: '10.0.0.1', localPort: 25 };

function tlv(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(value.length, 1);
  return Buffer.concat([head, value]);
}

/** A version 2 header: command 1 (PROXY) or 0 (LOCAL), family 0x11 (TCP4) or 0x21 (TCP6). */
function v2(command: 0 | 1, family: number, addresses: Buffer, tlvs: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x20 | command;
  head[1] = family;
  head.writeUInt16BE(addresses.length + tlvs.length, 2);
  return Buffer.concat([SIGNATURE, head, addresses, tlvs]);
}

function ipv4Addresses(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from(dst).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}

/** Feeds the chunks to a preamble as a connection does: once it is done, later reads are the client's. */
function feed(chunks: Buffer[]): PreambleStep {
  const preamble = new ProxyPreamble(OWN);
  let step: PreambleStep = { more: true };
  for (const [i, chunk] of chunks.entries()) {
    step = preamble.push(chunk);
    if ('peer' in step) return { peer: step.peer, rest: Buffer.concat([step.rest, ...chunks.slice(i + 1)]) };
    if ('error' in step) return step;
  }
  return step;
}

describe('PROXY protocol v1', () => {
  it('names the client and what follows, under every split of the input', () => {
    const input = Buffer.from('PROXY TCP4 192.0.2.7 10.0.0.1 51234 25\r\nEHLO c.test\r\n');
    for (const chunks of everySplit(input)) {
      const step = feed(chunks);
      expect(step).toMatchObject({ peer: { remoteAddress: '192.0.2.7', remotePort: 51234, localAddress: '10.0.0.1', localPort: 25 } });
      expect('rest' in step && step.rest.toString()).toBe('EHLO c.test\r\n');
    }
  });

  it('takes TCP6 and UNKNOWN (the client is then unknown, never the proxy)', () => {
    expect(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 4000 25\r\n'))).toMatchObject({
      header: { source: { address: '2001:db8::7', port: 4000 } },
      length: 44,
    });
    expect(feed([Buffer.from('PROXY UNKNOWN whatever\r\n')])).toMatchObject({
      peer: { remoteAddress: '', remotePort: 0, proxy: { version: 1, proxyAddress: '10.0.0.9' } },
    });
  });

  it.each([
    ['PROXY TCP4 192.0.2.7 10.0.0.1 51234\r\n', 'malformed PROXY v1 header'],
    ['PROXY TCP4 192.0.2.300 10.0.0.1 1 25\r\n', 'malformed PROXY v1 header'],
    ['PROXY TCP4 192.0.2.7 10.0.0.1 65536 25\r\n', 'malformed PROXY v1 header'],
    ['PROXY TCP6 192.0.2.7 10.0.0.1 1 25\r\n', 'malformed PROXY v1 header'],
    ['PROXY UDP4 192.0.2.7 10.0.0.1 1 25\r\n', 'malformed PROXY v1 header'],
    [`PROXY UNKNOWN ${'x'.repeat(100)}\r\n`, 'PROXY v1 header longer than 107 bytes'],
    ['EHLO c.test\r\n', 'not a PROXY protocol header'],
  ])('refuses %j', (text, error) => {
    expect(parseProxyHeader(Buffer.from(text))).toEqual({ error });
  });

  it('gives up at 107 bytes without a line end, not later', () => {
    expect(parseProxyHeader(Buffer.from(`PROXY ${'1'.repeat(100)}`))).toEqual({ more: true });
    expect(parseProxyHeader(Buffer.from(`PROXY ${'1'.repeat(101)}`))).toEqual({ error: 'PROXY v1 header longer than 107 bytes' });
  });
});

describe('PROXY protocol v2', () => {
  it('names an IPv4 client under every split, TLVs read, the rest handed on', () => {
    const tlvs = Buffer.concat([
      tlv(0x01, Buffer.from('smtp')),
      tlv(0x02, Buffer.from('mx.example.com')),
      tlv(0x05, Buffer.from('id-123')),
      tlv(0x04, Buffer.alloc(5)),
      tlv(0xea, Buffer.from('\x01vpce-0abc', 'latin1')),
    ]);
    const input = Buffer.concat([v2(1, 0x11, ipv4Addresses([192, 0, 2, 7], [10, 0, 0, 1], 51234, 25), tlvs), Buffer.from('QUIT\r\n')]);
    for (const chunks of everySplit(input)) {
      const step = feed(chunks);
      expect(step).toMatchObject({
        peer: {
          remoteAddress: '192.0.2.7',
          remotePort: 51234,
          proxy: { version: 2, command: 'PROXY', proxyAddress: '10.0.0.9', alpn: 'smtp', authority: 'mx.example.com' },
        },
      });
      if (!('peer' in step)) throw new Error('no peer');
      expect(step.peer.proxy?.uniqueId?.toString()).toBe('id-123');
      expect(step.peer.proxy?.aws?.toString('latin1')).toBe('\x01vpce-0abc');
      expect(step.rest.toString()).toBe('QUIT\r\n');
    }
  });

  it('reads the SSL TLV and its sub-fields', () => {
    const sub = Buffer.concat([
      tlv(0x21, Buffer.from('TLSv1.3')),
      tlv(0x22, Buffer.from('client.example')),
      tlv(0x23, Buffer.from('TLS_AES_256_GCM_SHA384')),
    ]);
    const ssl = Buffer.concat([Buffer.from([0x07, 0, 0, 0, 0]), sub]);
    const parsed = parseProxyHeader(v2(1, 0x11, ipv4Addresses([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), tlv(0x20, ssl)));
    expect(parsed).toMatchObject({
      header: { ssl: { client: 7, verify: 0, version: 'TLSv1.3', commonName: 'client.example', cipher: 'TLS_AES_256_GCM_SHA384' } },
    });
  });

  it('writes IPv6 addresses in their short form; LOCAL leaves the client unknown', () => {
    const addresses = Buffer.alloc(36);
    Buffer.from('20010db8000000000000000000000007', 'hex').copy(addresses, 0);
    Buffer.from('20010db8000000000000000000000001', 'hex').copy(addresses, 16);
    addresses.writeUInt16BE(4000, 32);
    addresses.writeUInt16BE(25, 34);
    expect(parseProxyHeader(v2(1, 0x21, addresses))).toMatchObject({ header: { source: { address: '2001:db8::7', port: 4000 } } });
    expect(feed([v2(0, 0x00, Buffer.alloc(0))])).toMatchObject({
      peer: { remoteAddress: '', proxy: { command: 'LOCAL', proxyAddress: '10.0.0.9' } },
    });
  });

  it.each<[string, Buffer, string]>([
    [
      'a version other than 2',
      Buffer.concat([SIGNATURE, Buffer.from([0x31, 0x11, 0, 12]), Buffer.alloc(12)]),
      'PROXY v2 header with an unknown version',
    ],
    [
      'an unknown command',
      Buffer.concat([SIGNATURE, Buffer.from([0x22, 0x11, 0, 12]), Buffer.alloc(12)]),
      'PROXY v2 header with an unknown command',
    ],
    [
      'addresses cut short',
      Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x11, 0, 4]), Buffer.alloc(4)]),
      'PROXY v2 header too short for its IPv4 addresses',
    ],
    [
      'a TLV past the end',
      v2(1, 0x11, ipv4Addresses([1, 1, 1, 1], [2, 2, 2, 2], 1, 2), Buffer.from([0x01, 0, 9, 0x41])),
      'PROXY v2 TLV longer than the header',
    ],
    [
      'a length over the cap',
      Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]),
      `PROXY v2 header longer than ${MAX_PROXY_HEADER} bytes`,
    ],
  ])('refuses %s', (_name, bytes, error) => {
    expect(parseProxyHeader(bytes)).toEqual({ error });
  });

  it('property: any IPv4 header with any TLVs round-trips, whatever follows it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 65535 }),
        fc.array(fc.tuple(fc.constantFrom(0x01, 0x02, 0x04, 0x05, 0x30, 0xe0), fc.uint8Array({ maxLength: 40 })), { maxLength: 5 }),
        fc.uint8Array({ maxLength: 20 }),
        (src, port, fields, after) => {
          const tlvs = Buffer.concat(fields.map(([type, value]) => tlv(type, Buffer.from(value))));
          const header = v2(1, 0x11, ipv4Addresses(src, [127, 0, 0, 1], port, 25), tlvs);
          const parsed: ProxyParse = parseProxyHeader(Buffer.concat([header, Buffer.from(after)]));
          expect(parsed).toMatchObject({ header: { source: { address: src.join('.'), port } }, length: header.length });
        },
      ),
    );
  });
});
