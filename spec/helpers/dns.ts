/** A DNS server on loopback for the tests' own zone, started by the test (dns2, UDP). */
import dns2 from 'dns2';

const { Packet } = dns2;

/** The records of one name; a name not in the zone is NXDOMAIN. */
export interface Records {
  /** [preference, exchange]; `'null'` is a null MX (RFC 7505). */
  mx?: [number, string][] | 'null';
  a?: string[];
  aaaa?: string[];
  /** TXT records, one string each (split into 255-byte character-strings on the wire). */
  txt?: string[];
  /** Answer every query for the name with this failure instead; `'silence'` never answers. */
  fail?: 'SERVFAIL' | 'REFUSED' | 'silence';
}

export interface TestDns {
  /** For the `dnsServers` setting: `127.0.0.1:port`. */
  readonly server: string;
  /** The zone, changeable while the server runs. */
  readonly zone: Map<string, Records>;
  /** Queries seen, as `TYPE name`. */
  readonly queries: string[];
  close(): Promise<void>;
}

export async function startDns(zone: Record<string, Records>, port = 0): Promise<TestDns> {
  const records = new Map(Object.entries(zone).map(([name, r]) => [name.toLowerCase(), r]));
  const queries: string[] = [];
  const server = dns2.createServer({
    udp: true,
    handle: (request, sendAsync) => {
      const send = (packet: Parameters<typeof sendAsync>[0]): void => void sendAsync(packet);
      const response = Packet.createResponseFromRequest(request);
      const question = request.questions[0];
      if (question === undefined) return send(response);
      const name = question.name.toLowerCase();
      queries.push(`${Packet.typeName(question.type)} ${name}`);
      const found = records.get(name);
      if (found === undefined) {
        response.header.rcode = Packet.RCODE.NXDOMAIN;
        return send(response);
      }
      if (found.fail === 'silence') return;
      if (found.fail !== undefined) {
        response.header.rcode = Packet.RCODE[found.fail];
        return send(response);
      }
      const base = { name: question.name, class: Packet.CLASS.IN, ttl: 60 };
      if (question.type === Packet.TYPE.MX && found.mx !== undefined) {
        const mx = found.mx === 'null' ? ([[0, '']] as [number, string][]) : found.mx;
        for (const [priority, exchange] of mx) response.answers.push({ ...base, type: Packet.TYPE.MX, priority, exchange } as never);
      } else if (question.type === Packet.TYPE.A) {
        for (const address of found.a ?? []) response.answers.push({ ...base, type: Packet.TYPE.A, address } as never);
      } else if (question.type === Packet.TYPE.TXT) {
        for (const text of found.txt ?? []) {
          const strings = text.match(/[\s\S]{1,255}/g) ?? [''];
          response.answers.push({ ...base, type: Packet.TYPE.TXT, data: strings } as never);
        }
      } else if (question.type === Packet.TYPE.AAAA) {
        for (const address of found.aaaa ?? []) response.answers.push({ ...base, type: Packet.TYPE.AAAA, address } as never);
      }
      send(response);
    },
  });
  const listening = new Promise<void>((resolve) => server.on('listening', () => resolve()));
  await server.listen({ udp: { port, address: '127.0.0.1' } });
  await listening;
  const address = (server.addresses() as { udp?: { port: number } }).udp;
  if (address === undefined) throw new Error('the test DNS server has no UDP address');
  return {
    server: `127.0.0.1:${address.port}`,
    zone: records,
    queries,
    close: async () => {
      await server.close();
    },
  };
}
