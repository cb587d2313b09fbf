/**
 * The tests' DNS server as a process of its own: `node --import tsx dns-serve.ts ZONE.json PORT
 * READY-FILE` answers the zone on 127.0.0.1:PORT and writes READY-FILE once it listens. For a
 * tool that asks the system resolver (port 53), run in a network namespace of its own.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { startDns } from './dns.js';

const [zoneFile, port, ready] = process.argv.slice(2);
if (zoneFile === undefined || port === undefined || ready === undefined) throw new Error('usage: dns-serve.ts ZONE.json PORT READY-FILE');
const dns = await startDns(JSON.parse(readFileSync(zoneFile, 'utf8')) as Parameters<typeof startDns>[0], Number(port));
writeFileSync(ready, dns.server);
process.on('SIGTERM', () => void dns.close().then(() => process.exit(0)));
