/**
 * One benchmark server in its own process, so its CPU and memory are its own. Started by
 * bench/run.ts with `sirocco` or `smtp-server` (nodemailer's, the reference) as its argument,
 * by bench/deliver.ts also with `deliver` (Sirocco as an MTA), and by bench/instructions.ts with
 * `floor` (Node's sockets and nothing else).
 * Both handlers do the same work: collect the body into one Buffer and count the message, or with
 * `stream`, read the message as a stream and count its bytes, holding none of it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { Session as Inspector } from 'node:inspector/promises';
import { getHeapSpaceStatistics } from 'node:v8';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { SMTPServer as ReferenceServer } from 'smtp-server';
import { acceptWithWholeOptions } from '../lib/net/accept.js';
import { readChunks, stopReading } from '../lib/net/reader.js';

// Sirocco as users run it: the built package (dist/, `npm run build`; the bench scripts build
// first). BENCH_SIROCCO=source loads the TypeScript source instead, through tsx; the two differ
// on the hot path (bench/README, "The built package").
const fromSource = process.env.BENCH_SIROCCO === 'source';
const { Application, RedisLimitStore, RequestHandler, SMTPServer } = (
  fromSource ? await import('../lib/index.js') : await import(new URL('../dist/lib/index.js', import.meta.url).href)
) as typeof import('../lib/index.js');
const { Deliver } = (
  fromSource ? await import('../lib/entry/outbound.js') : await import(new URL('../dist/lib/entry/outbound.js', import.meta.url).href)
) as typeof import('../lib/entry/outbound.js');

const kind = process.argv[2];
const options = process.argv.slice(3);
// `tls DIR`: offer STARTTLS with DIR/server.key and DIR/server.crt.
const tlsDir = options.includes('tls') ? options[options.indexOf('tls') + 1] : undefined;
// `stream`: the handler reads the message as a stream and holds none of it.
const streaming = options.includes('stream');
// `lent`: Sirocco's streaming handler reads lent chunks (`this.request.lentChunks()`), not the stream.
const lent = options.includes('lent');
// `metrics`: Sirocco counts Prometheus metrics (metricsListen on a free loopback port).
const withMetrics = options.includes('metrics');
// `traces`: an OpenTelemetry SDK is registered, sampling every span, exporting in batches to nowhere.
if (options.includes('traces')) {
  const nowhere: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: () => Promise.resolve() };
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(nowhere)] }));
}
// `limits`: the per-client limits count loopback clients too (limitExempt []), high enough to
// refuse no one; `redis`: and their counts are kept in Redis at $BENCH_REDIS_URL.
const limits = options.includes('limits') || options.includes('redis');
const redisUrl = options.includes('redis') ? process.env.BENCH_REDIS_URL : undefined;
if (options.includes('redis') && redisUrl === undefined) throw new Error('bench/server.ts: redis needs BENCH_REDIS_URL');
// `mailauth=HOST:PORT`: Sirocco verifies SPF, DKIM, DMARC and ARC, asking the DNS server there.
const mailAuthDns = options.find((o) => o.startsWith('mailauth='))?.slice('mailauth='.length);
// `budget=BYTES`: Sirocco's bodyMemoryBudget.
const budget = Number(options.find((o) => o.startsWith('budget='))?.slice('budget='.length) ?? 0) || undefined;
const tls =
  tlsDir === undefined ? undefined : { key: readFileSync(join(tlsDir, 'server.key')), cert: readFileSync(join(tlsDir, 'server.crt')) };
const MAX_SIZE = 2 * 1024 * 1024 * 1024;
let messages = 0;
let bytes = 0;
let port: number;
let refusals = (): number => 0;

if (kind === 'sirocco') {
  class Counting extends RequestHandler {
    override data(): void {
      messages++;
      bytes += this.request.body.length;
    }
  }
  class CountingStream extends RequestHandler {
    static override streaming = true;
    override async data(): Promise<void> {
      let size = 0;
      const chunks: AsyncIterable<Buffer> = lent ? this.request.lentChunks() : this.request.stream;
      for await (const part of chunks) size += part.length;
      messages++;
      bytes += size;
    }
  }
  const app = new Application(streaming ? CountingStream : Counting, {
    ...(budget === undefined ? {} : { bodyMemoryBudget: budget }),
    ...(withMetrics ? { metricsListen: '127.0.0.1:0' } : {}),
    hostname: 'bench.test',
    logger: pino({ level: 'silent' }),
    maxMessageSize: MAX_SIZE,
    maxConnections: 100_000,
    ...(mailAuthDns === undefined ? {} : { mailAuth: true, dnsServers: [mailAuthDns] }),
    ...(tls === undefined ? {} : { tls }),
    ...(limits ? { limitExempt: [], maxConnectionsPerIp: 100_000, maxConnectionsPerNet: 100_000, connectionRatePerIp: 1_000_000 } : {}),
    ...(redisUrl === undefined ? {} : { limitStore: new RedisLimitStore({ url: redisUrl, prefix: `bench${process.pid}:` }) }),
  });
  refusals = () => app.bodyBudget.refusals;
  const server = new SMTPServer(app);
  await server.listen(0, '127.0.0.1');
  const address = server.address();
  port = typeof address === 'object' && address !== null ? address.port : 0;
} else if (kind === 'smtp-server') {
  const server = new ReferenceServer({
    name: 'bench.test',
    logger: false,
    disabledCommands: tls === undefined ? ['AUTH', 'STARTTLS'] : ['AUTH'],
    ...(tls ?? {}),
    // Sirocco does no reverse DNS lookup; the reference's default one would dominate (b).
    disableReverseLookup: true,
    size: MAX_SIZE,
    maxClients: 100_000,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (!streaming) chunks.push(chunk);
      });
      stream.on('end', () => {
        messages++;
        bytes += streaming ? size : Buffer.concat(chunks).length;
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  port = typeof address === 'object' && address !== null ? address.port : 0;
} else if (kind === 'deliver') {
  // Row (h): Sirocco as an MTA, queueing each message (fsync) and delivering it to the MX of its
  // recipient's domain, found through the bench's DNS server: `queue=DIR dns=HOST:PORT mx-port=PORT`.
  const option = (name: string): string => options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1) ?? '';
  const app = new Application(Deliver, {
    hostname: 'mta.bench.test',
    logger: pino({ level: 'silent' }),
    maxConnections: 100_000,
    queueDir: option('queue'),
    dnsServers: [option('dns')],
    deliveryPort: Number(option('mx-port')),
    // As Postfix's default_destination_concurrency_limit, which the row compares with.
    deliveryConcurrencyPerDomain: 20,
  });
  const server = new SMTPServer(app);
  await server.listen(0, '127.0.0.1');
  const address = server.address();
  port = typeof address === 'object' && address !== null ? address.port : 0;
} else if (kind === 'floor') {
  // Not an SMTP server: answers each command with a fixed reply and each message with a fixed
  // 250, parsing nothing. What Node's sockets alone cost per message, read and written the way
  // Sirocco accepts, reads and writes them: the floor under Sirocco. With `tls`, STARTTLS upgrades the
  // socket as Sirocco does (a TLSSocket over it, one secure context for all), and the same fixed
  // replies go on inside TLS.
  const context = tls === undefined ? undefined : createSecureContext({ ...tls, minVersion: 'TLSv1.2' });
  const serve = (socket: Socket): void => {
    let inData = false;
    const onChunk = (chunk: Buffer): void => {
      if (inData) {
        if (chunk.length >= 5 && chunk.toString('latin1', chunk.length - 5) === '\r\n.\r\n') {
          inData = false;
          messages++;
          socket.write('250 2.0.0 Ok: queued as ABCDEFGHJKMN\r\n');
        }
        return;
      }
      const verb = chunk.toString('latin1', 0, 4).toUpperCase();
      if (verb === 'DATA') {
        inData = true;
        socket.write('354 End data with <CR><LF>.<CR><LF>\r\n');
      } else if (verb === 'QUIT') {
        socket.end('221 2.0.0 Bye\r\n');
      } else if (verb === 'STAR' && context !== undefined) {
        socket.write('220 2.0.0 Ready to start TLS\r\n');
        stopReading(socket);
        const secure = new TLSSocket(socket, { isServer: true, secureContext: context });
        secure.on('error', () => undefined);
        serve(secure);
      } else {
        socket.write('250 2.0.0 Ok\r\n');
      }
    };
    readChunks(socket, { onChunk });
  };
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    socket.write('220 floor.test ESMTP\r\n');
    serve(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // Accepted as Sirocco's listeners accept on Node 20 (lib/net/accept.ts).
  acceptWithWholeOptions(server);
  const address = server.address();
  port = typeof address === 'object' && address !== null ? address.port : 0;
} else {
  throw new Error(`bench/server.ts: unknown server ${String(kind)}`);
}

process.on('message', (message: unknown) => {
  if (message === 'stats') {
    const cpu = process.cpuUsage();
    process.send?.({
      messages,
      bytes,
      cpuMicros: cpu.user + cpu.system,
      rss: process.memoryUsage().rss,
      heapUsed: process.memoryUsage().heapUsed,
      maxRss: process.resourceUsage().maxRSS * 1024,
      refusals: refusals(),
      // The young generation's size: it grows as objects survive collections, and does not shrink back.
      young: getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0,
    });
  } else if (message === 'gc') {
    globalThis.gc?.();
    process.send?.('gc-done');
  } else if (message === 'alloc-start' || message === 'alloc-stop') {
    allocations(message).then(
      (reply) => process.send?.(reply),
      (err: unknown) => process.send?.({ error: String(err) }),
    );
  }
});

/**
 * bench/allocations.ts: V8's sampling heap profiler over a load, counting objects the collector
 * has already freed too; `alloc-stop` answers the estimated bytes allocated meanwhile.
 */
let inspector: Inspector | undefined;
let profiles = 0;
async function allocations(message: 'alloc-start' | 'alloc-stop'): Promise<unknown> {
  if (message === 'alloc-start') {
    inspector = new Inspector();
    inspector.connect();
    await inspector.post('HeapProfiler.enable');
    // The two include flags are V8's (DevTools protocol), not yet in @types/node.
    const sampling = { samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true };
    await inspector.post('HeapProfiler.startSampling', sampling as { samplingInterval: number });
    return 'alloc-started';
  }
  if (inspector === undefined) throw new Error('alloc-stop before alloc-start');
  const { profile } = await inspector.post('HeapProfiler.stopSampling');
  inspector.disconnect();
  inspector = undefined;
  // BENCH_HEAP_PROFILE=dir keeps each profile (open it in DevTools' Memory tab) to read the causes.
  const dir = process.env.BENCH_HEAP_PROFILE;
  if (dir !== undefined && dir !== '') writeFileSync(join(dir, `${kind ?? 'server'}-${++profiles}.heapprofile`), JSON.stringify(profile));
  type Node = { selfSize: number; children: Node[] };
  const sum = (node: Node): number => node.children.reduce((total, child) => total + sum(child), node.selfSize);
  return { allocated: sum(profile.head) };
}
process.send?.({ port });
// A clean exit on SIGTERM, so a --cpu-prof run writes its profile.
process.on('SIGTERM', () => process.exit(0));
