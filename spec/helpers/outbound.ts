/** Mail exchangers for delivery tests: servers on several loopback addresses (127.0.0.x) that share one port. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Application, RequestHandler, SMTPError, SMTPServer, type HandlerClass, type SettingsInput } from '../../lib/index.js';
import { Deliver, type DeliverSettings } from '../../lib/entry/outbound.js';
import { silent, startServer, type Running } from './server.js';

/** What an exchanger received. */
export interface Arrival {
  readonly exchanger: string;
  readonly mailFrom: string;
  readonly rcptTos: string[];
  readonly body: string;
  /** Whether the session was over TLS, and whether the client asked for REQUIRETLS. */
  readonly secure: boolean;
  readonly requireTls: boolean;
}

/** How one exchanger behaves. */
export interface ExchangerPlan {
  /** Greet with this refusal instead of 220 (then close). */
  refuseGreeting?: SMTPError;
  /** Refuse these recipients at RCPT. */
  refuseRcpt?: Record<string, SMTPError>;
  /** Refuse the message after its data, this many times (then accept). */
  failData?: { error: SMTPError; times: number };
  /** Wait this long at the first RCPT of each connection, before answering. */
  slowRcptMs?: number;
  /** Extra settings (tls…). */
  settings?: SettingsInput;
}

export interface Fleet {
  readonly port: number;
  readonly arrivals: Arrival[];
  /** Connections each exchanger accepted. */
  readonly connections: Map<string, number>;
  /** Starts one more exchanger on the fleet's port. */
  add(address: string, plan?: ExchangerPlan): Promise<void>;
  close(): Promise<void>;
}

function recorder(address: string, plan: ExchangerPlan, arrivals: Arrival[]): HandlerClass {
  let dataFailures = 0;
  return class Exchanger extends RequestHandler {
    override async rcpt(to: string): Promise<void> {
      if (plan.slowRcptMs !== undefined) await new Promise((r) => setTimeout(r, plan.slowRcptMs));
      const refusal = plan.refuseRcpt?.[to];
      if (refusal !== undefined) throw refusal;
    }
    override data(): void {
      if (plan.failData !== undefined && dataFailures < plan.failData.times) {
        dataFailures++;
        throw plan.failData.error;
      }
      arrivals.push({
        exchanger: address,
        mailFrom: this.request.mailFrom,
        rcptTos: [...this.request.rcptTos],
        body: this.request.body.toString('utf8'),
        secure: this.request.session.secure,
        requireTls: this.request.envelope.requireTls,
      });
    }
  };
}

/** Exchangers on loopback addresses that share a port, as the `deliveryPort` setting asks. */
export async function startFleet(first: string, plan: ExchangerPlan = {}): Promise<Fleet> {
  const arrivals: Arrival[] = [];
  const connections = new Map<string, number>();
  const servers: SMTPServer[] = [];
  let port = 0;
  const add = async (address: string, own: ExchangerPlan = {}): Promise<void> => {
    const app = new Application(recorder(address, own, arrivals), {
      hostname: `mx-${address}.test`,
      logger: silent,
      closeTimeout: 500,
      onConnect: () => {
        connections.set(address, (connections.get(address) ?? 0) + 1);
        if (own.refuseGreeting !== undefined) throw own.refuseGreeting;
        return true;
      },
      ...own.settings,
    });
    const server = new SMTPServer(app);
    await server.listen(port, address);
    servers.push(server);
    const bound = server.address();
    if (port === 0 && bound !== null && typeof bound === 'object') port = bound.port;
  };
  await add(first, plan);
  return {
    get port() {
      return port;
    },
    arrivals,
    connections,
    add,
    close: async () => {
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

/** A fresh queue folder, removed by `cleanup`. */
export function tempQueue(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sirocco-queue-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A Deliver server on loopback for one test: its own queue folder (removed by `cleanups`), the
 * test's DNS, exchangers on `fleetPort` verified against `ca`, retries an hour away, the queue
 * scanned every 100 ms.
 */
export async function startDeliverer(
  cleanups: (() => void | Promise<void>)[],
  setup: { readonly dns: string; readonly fleetPort: number; readonly ca: Buffer },
  settings: SettingsInput & Record<string, unknown> = {},
): Promise<Running<DeliverSettings>> {
  const queue = tempQueue();
  cleanups.push(queue.cleanup);
  return startServer(Deliver, {
    hostname: 'mta.test',
    queueDir: queue.dir,
    dnsServers: [setup.dns],
    deliveryPort: setup.fleetPort,
    deliveryTLS: { ca: [setup.ca] },
    retrySchedule: [3600],
    queueScanInterval: 100,
    ...settings,
  });
}
