/**
 * Addresses of this host and its networks (loopback, private, shared, link-local): where an HTTPS
 * request a destination's DNS asks for (its MTA-STS policy, its TLS report collector) is not
 * sent unless the operator allows it, or a domain's records could aim this host's requests at
 * services of its own network.
 */
import { BlockList, isIP } from 'node:net';

const PRIVATE = new BlockList();
for (const [address, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const)
  PRIVATE.addSubnet(address, prefix, 'ipv4');
for (const [address, prefix] of [
  ['::', 127],
  ['fc00::', 7],
  ['fe80::', 10],
  ['::ffff:0:0', 96],
] as const)
  PRIVATE.addSubnet(address, prefix, 'ipv6');

/** Whether `address` (an IP address) is one of this host's or its networks'. */
export function isPrivateAddress(address: string): boolean {
  const version = isIP(address);
  return version !== 0 && PRIVATE.check(address, version === 6 ? 'ipv6' : 'ipv4');
}
