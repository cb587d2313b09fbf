/**
 * The SPF results of mail authentication against the RFC 7208 test suite (openspf.org's YAML
 * suite, release 2014.04, which SPF implementations run; Debian ships it with python3-spf). Each
 * scenario's zone is served by a DNS server on loopback, following the suite's driver rules: type
 * SPF records also answer as TXT where a name has no TXT of its own, `TIMEOUT` and names under
 * `error.` never answer, a CNAME is followed one level.
 */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import dns2 from 'dns2';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Verifier } from '../../lib/auth/verify.js';

const SUITE = '/usr/share/doc/python3-spf/rfc7208-tests.yml.gz';
const present = existsSync(SUITE);
if (!present) console.log(`spf-suite.spec: skipped: no ${SUITE} (Debian: apt-get install python3-spf)`);

const { Packet } = dns2;

type Rdata = string | readonly string[] | readonly [number, string] | true;
type Zone = Map<string, { type: string; value: Rdata }[] | 'TIMEOUT-ALL'>;

interface SuiteTest {
  readonly scenario: string;
  readonly name: string;
  readonly helo: string;
  readonly host: string;
  readonly mailfrom: string;
  readonly result: string | readonly string[];
}

/** The scenarios: each one's zone and tests. */
function loadSuite(): { zone: Zone; tests: SuiteTest[] }[] {
  const text = gunzipSync(readFileSync(SUITE)).toString('utf8');
  return parseAllDocuments(text).map((doc) => {
    const data = doc.toJSON() as {
      description: string;
      tests: Record<string, Omit<SuiteTest, 'scenario' | 'name'>>;
      zonedata: Record<string, (Record<string, unknown> | string)[]>;
    };
    const zone: Zone = new Map();
    for (const [name, records] of Object.entries(data.zonedata ?? {})) {
      const list: { type: string; value: Rdata }[] = [];
      let timeoutAll = false;
      for (const record of records) {
        if (record === 'TIMEOUT') {
          timeoutAll = list.length === 0;
          list.push({ type: 'TIMEOUT', value: true });
          continue;
        }
        // An SPF or TXT of NONE is no record, but a name whose TXT is NONE gets no SPF copied to TXT.
        for (const [type, value] of Object.entries(record)) list.push({ type, value: value as Rdata });
      }
      // The driver's rule: without TXT records of its own, a name's SPF records answer as TXT too.
      if (!list.some((r) => r.type === 'TXT'))
        for (const r of list.filter((x) => x.type === 'SPF')) list.push({ type: 'TXT', value: r.value });
      zone.set(name.toLowerCase(), timeoutAll && list.length === 1 ? 'TIMEOUT-ALL' : list);
    }
    const tests = Object.entries(data.tests).map(([name, t]) => ({ scenario: data.description, name, ...t }));
    return { zone, tests };
  });
}

let zone: Zone = new Map();
let server: ReturnType<typeof dns2.createServer> | undefined;
let address = '';

function answer(name: string, type: string): { rcode?: number; answers: object[] } | 'silence' {
  const lower = name.toLowerCase().replace(/\.$/, '');
  if (lower.startsWith('error.')) return 'silence';
  const records = zone.get(lower);
  if (records === undefined) return { rcode: Packet.RCODE.NXDOMAIN, answers: [] };
  if (records === 'TIMEOUT-ALL') return 'silence';
  const base = { name, class: Packet.CLASS.IN, ttl: 60 };
  const answers: object[] = [];
  // The driver's rule: a TIMEOUT times out a query that no record before it answered.
  let answered = false;
  for (const { type: t, value } of records) {
    if (t === 'TIMEOUT') {
      if (!answered) return 'silence';
      break;
    }
    if (t === 'CNAME' && type !== 'CNAME') {
      answers.push({ ...base, type: Packet.TYPE.CNAME, domain: value as string });
      const target = answer(value as string, type);
      if (target !== 'silence') answers.push(...target.answers);
      answered = true;
      continue;
    }
    if (t !== type || value === 'NONE') continue;
    answered = true;
    if (t === 'TXT' || t === 'SPF') {
      const strings = typeof value === 'string' ? [value] : (value as string[]);
      answers.push({ ...base, type: Packet.TYPE[t], data: strings });
    } else if (t === 'A' || t === 'AAAA') answers.push({ ...base, type: Packet.TYPE[t], address: value as string });
    else if (t === 'MX') {
      const [priority, exchange] = value as [number, string];
      answers.push({ ...base, type: Packet.TYPE.MX, priority, exchange });
    } else if (t === 'PTR') answers.push({ ...base, type: Packet.TYPE.PTR, domain: value as string });
  }
  return { answers };
}

beforeAll(async () => {
  if (!present) return;
  server = dns2.createServer({
    udp: true,
    handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request);
      const question = request.questions[0];
      if (question === undefined) return void send(response);
      const found = answer(question.name, Packet.typeName(question.type) ?? '');
      if (found === 'silence') return;
      if (found.rcode !== undefined) response.header.rcode = found.rcode;
      response.answers.push(...(found.answers as never[]));
      void send(response);
    },
  });
  const listening = new Promise<void>((resolve) => server?.on('listening', () => resolve()));
  await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  await listening;
  address = `127.0.0.1:${(server.addresses() as { udp: { port: number } }).udp.port}`;
});
afterAll(async () => {
  await server?.close();
});

/**
 * Where the results differ from the suite, and why: the list is asserted whole, so a fix (or a new
 * difference) shows. Names Node's resolver will not send (a colon, a space from a macro, more than
 * 253 characters) fail in it before any query, which mailauth reports as temperror; the others are
 * mailauth's reading of RFC 7208 (exp= checks, the HELO macros, a bare ip6).
 */
const KNOWN = new Map([
  ['null-text', 'an SPF record of no strings: the loopback server cannot encode it'],
  ['invalid-domain-long', 'a name past 253 characters: refused by the resolver (temperror)'],
  ['invalid-domain-long-via-macro', 'a name past 253 characters: refused by the resolver (temperror)'],
  ['ptr-cname-loop', 'a CNAME loop under a PTR name: the resolver fails (temperror)'],
  ['a-colon-domain', 'a name with a colon: refused by the resolver (temperror)'],
  ['a-colon-domain-ip4mapped', 'a name with a colon: refused by the resolver (temperror)'],
  ['mx-colon-domain', 'a name with a colon: refused by the resolver (temperror)'],
  ['mx-colon-domain-ip4mapped', 'a name with a colon: refused by the resolver (temperror)'],
  ['macro-mania-in-domain', 'a name with a space from %_: refused by the resolver (temperror)'],
  ['bare-ip6', 'mailauth takes a bare "ip6" as no match, not a syntax error'],
  ['exp-syntax-error', 'mailauth does not check the syntax of exp='],
  ['exp-twice', 'mailauth does not refuse two exp= modifiers'],
  ['exp-only-macro-char', 'mailauth does not check the syntax of exp='],
  ['p-macro-multiple', 'mailauth does not validate %{p} against several PTR names'],
  ['invalid-hello-macro', 'mailauth refuses an invalid HELO name in %{h} (permerror where the suite says fail)'],
  ['hello-domain-literal', 'mailauth refuses a domain literal in %{h} (permerror where the suite says fail)'],
  ['require-valid-helo', 'mailauth refuses an invalid HELO name in %{h} (permerror where the suite says fail)'],
]);

/** Cases where the suite allows more than one result take any of them. */
const accepted = (result: SuiteTest['result']): string[] => (typeof result === 'string' ? [result] : [...result]);

describe.skipIf(!present)('SPF against the RFC 7208 test suite', () => {
  it('matches the suite in every test but the listed differences (186 of 203)', async () => {
    const suite = loadSuite();
    const mismatches: string[] = [];
    let count = 0;
    for (const scenario of suite) {
      zone = scenario.zone;
      for (const test of scenario.tests) {
        // A verifier per test: its cache must not carry one scenario's answers into the next.
        const verifier = new Verifier({ authservId: 'mx.test', dnsServers: [address], timeoutMs: 2000 });
        const message = Buffer.from('From: suite@dmarc.invalid\r\nSubject: spf\r\n\r\nbody\r\n');
        const auth = await verifier.verify(message, { ip: test.host, helo: test.helo, sender: test.mailfrom });
        count++;
        if (!accepted(test.result).includes(auth.spf.result)) mismatches.push(test.name);
      }
    }
    console.log(
      `spf-suite.spec: ${count - mismatches.length} of ${count} match; the ${mismatches.length} others are listed with their reasons`,
    );
    expect(count).toBe(203);
    expect(mismatches.sort()).toEqual([...KNOWN.keys()].sort());
  }, 120_000);
});
