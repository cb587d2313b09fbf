/**
 * Lanes: the deliveries to one destination (a domain, with or without verified TLS, or the TLS
 * reports mailed to it), carried one after another over one connection, several lanes to a destination at most and a limit of
 * connections in all. A lane resolves its domain once, connects to the first exchanger that
 * answers, and sends its jobs until none are left; when no exchanger answers, every job waiting in
 * the lane gets the same failure at once rather than a connection attempt each.
 */
import type { Readable } from 'node:stream';
import {
  OutboundConnection,
  type ConnectFailure,
  type ConnectOptions,
  type OutgoingMessage,
  type RecipientResult,
  type TlsOutcome,
} from './client.js';
import type { Exchanger, MxResolver } from './resolver.js';
import type { MtaSts, StsPolicy } from './mta-sts.js';
import type { TlsSession } from './tls-report.js';
import type { QueueEntry, QueuedRecipient } from './spool.js';
import { connectFailureResult, requireTlsElsewhere } from './require-tls.js';

/** One message's recipients at one domain. */
export interface LaneJob {
  readonly entry: QueueEntry;
  readonly recipients: readonly QueuedRecipient[];
}

/**
 * Counts of open connections kept where several hosts see them (the application's `limitStore`,
 * Redis for a fleet): with it, `perDestination` holds across every host that shares the store.
 */
export interface SharedCounts {
  /** One more connection to `key`: the count across the hosts, this one included. */
  acquire(key: string): number | Promise<number>;
  release(key: string): void | Promise<void>;
}

/** Where messages per destination are counted in a sliding minute: this process's counts, or a fleet's shared ones. */
export interface RateCounts {
  /** One more message to `key`: the count in the last `windowMs`, this one included. */
  hit(key: string, windowMs: number): number | Promise<number>;
  /** The count in the last `windowMs`. */
  count(key: string, windowMs: number): number | Promise<number>;
}

const MINUTE = 60_000;

/** What a job not sent because the queue closed gets: a deferral, so it is tried again at the next start. */
const CLOSING = { code: 451, status: '4.3.2', reply: '451 4.3.2 not sent: the outbound queue closed' };

/** How long a lane waits before it asks again when the fleet already has a destination's connections. */
const SHARED_RETRY_MS = 1000;

export interface LaneOptions<J extends LaneJob> {
  readonly resolver: MxResolver;
  readonly connect: Omit<ConnectOptions, 'verifiedTls'>;
  readonly concurrency: number;
  readonly perDestination: number;
  /** Where a destination's connections are counted across hosts; without it, in this process alone. */
  readonly shared?: SharedCounts | undefined;
  /** Messages per minute to one destination, and where they are counted; none: no limit. */
  readonly rate?: { readonly perMinute: number; readonly counts: RateCounts } | undefined;
  /** MTA-STS policies (RFC 8461): where they enforce, only their exchangers, over verified TLS. */
  readonly mtaSts?: MtaSts | undefined;
  /** Where each session's TLS outcome is counted (RFC 8460 reports). */
  readonly tlsReports?: { record(session: TlsSession): void } | undefined;
  /** The job's message content, read anew for each attempt. */
  content(job: J): Readable;
  /** A job's results, one per recipient. */
  done(job: J, results: readonly RecipientResult[]): void;
}

/** How a lane goes to its destination: the exchangers it may use, and the policy that says so. */
interface Route {
  readonly exchangers: readonly Exchanger[];
  readonly enforced: boolean;
  readonly policy?: StsPolicy | undefined;
  /** Under a `testing` policy: the exchangers it names (the others are used, and reported). */
  readonly named?: readonly Exchanger[] | undefined;
}

/**
 * How a lane goes to its domain: over verified TLS (REQUIRETLS, `requireTlsDomains`), as the
 * domain's MTA-STS policy says, or carrying TLS reports: RFC 8460 §3 has reports delivered
 * despite any TLS failure (so no policy narrows their exchangers or asks for verified TLS), and
 * their sessions left out of the next report.
 */
export type LaneKind = 'verified' | 'open' | 'report';

interface Lane<J> {
  readonly domain: string;
  readonly verified: boolean;
  readonly report: boolean;
  readonly jobs: J[];
  running: number;
  /** Wakes a runner that waits, connection open, for the lane's next job. */
  wake: (() => void) | undefined;
}

/** How long an open connection waits for another message to its destination before QUIT (as Postfix's connection cache, 2 s). */
const LINGER_MS = 2000;

export class Lanes<J extends LaneJob> {
  readonly #options: LaneOptions<J>;
  readonly #lanes = new Map<string, Lane<J>>();
  #connections = 0;
  #closed = false;

  constructor(options: LaneOptions<J>) {
    this.#options = options;
  }

  /** Queues a job for `domain` and opens lanes while there is room. */
  add(domain: string, kind: LaneKind, job: J): void {
    const key = `${kind}:${domain}`;
    let lane = this.#lanes.get(key);
    if (lane === undefined) {
      lane = { domain, verified: kind === 'verified', report: kind === 'report', jobs: [], running: 0, wake: undefined };
      this.#lanes.set(key, lane);
    }
    lane.jobs.push(job);
    lane.wake?.();
    this.#pump();
  }

  /** Sends the connections that wait for more work home (the queue is closing). */
  close(): void {
    this.#closed = true;
    for (const lane of this.#lanes.values()) lane.wake?.();
    this.#pump();
  }

  /** The lane's next job; with a connection open, waits a little for one to come. */
  async #next(lane: Lane<J>, connection: OutboundConnection | undefined): Promise<J | undefined> {
    const job = lane.jobs.shift();
    if (job !== undefined || connection?.alive !== true || this.#closed) return job;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, LINGER_MS);
      timer.unref();
      lane.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    lane.wake = undefined;
    return lane.jobs.shift();
  }

  #pump(): void {
    if (this.#closed) {
      // No runner starts once closing: a lane without one hands its jobs back, to be tried again later.
      for (const lane of this.#lanes.values()) if (lane.running === 0) this.#failAll(lane, () => CLOSING);
      return;
    }
    for (const [key, lane] of this.#lanes) {
      while (
        lane.jobs.length > lane.running &&
        lane.running < this.#options.perDestination &&
        this.#connections < this.#options.concurrency
      ) {
        lane.running++;
        this.#connections++;
        void this.#slotted(lane).finally(() => {
          lane.running--;
          this.#connections--;
          if (lane.running === 0 && lane.jobs.length === 0) this.#lanes.delete(key);
          this.#pump();
        });
      }
    }
  }

  /**
   * Runs the lane within the fleet's `perDestination` when the counts are shared: a connection
   * over it is not opened, and the lane asks again a moment later (its jobs wait meanwhile).
   */
  async #slotted(lane: Lane<J>): Promise<void> {
    const shared = this.#options.shared;
    if (shared === undefined) return this.#run(lane);
    const slot = `dest:${lane.domain}`;
    const open = await shared.acquire(slot);
    try {
      if (open <= this.#options.perDestination) return await this.#run(lane);
    } finally {
      await shared.release(slot);
    }
    if (this.#closed) return;
    await new Promise<void>((resolve) => setTimeout(resolve, SHARED_RETRY_MS).unref());
  }

  /**
   * Waits until the destination's rate allows one more message, and counts it; `false` when the
   * lanes close meanwhile. The count is read before it is added to, so a waiting lane adds
   * nothing: several hosts reading at once may pass the rate by one message each.
   */
  async #paced(lane: Lane<J>): Promise<boolean> {
    const rate = this.#options.rate;
    if (rate === undefined || rate.perMinute === 0) return true;
    const key = `destrate:${lane.domain}`;
    while ((await rate.counts.count(key, MINUTE)) >= rate.perMinute) {
      if (this.#closed) return false;
      await new Promise<void>((resolve) => setTimeout(resolve, Math.min(SHARED_RETRY_MS, MINUTE / rate.perMinute)).unref());
    }
    await rate.counts.hit(key, MINUTE);
    return true;
  }

  /** Every job waiting in the lane gets `failure`. */
  #failAll(lane: Lane<J>, failure: (job: J) => Omit<RecipientResult, 'recipient'>): void {
    for (let job = lane.jobs.shift(); job !== undefined; job = lane.jobs.shift()) {
      const result = failure(job);
      this.#options.done(
        job,
        job.recipients.map((r) => ({ recipient: r.address, ...result })),
      );
    }
  }

  /**
   * The exchangers the destination's MTA-STS policy allows, and whether it enforces (then over
   * verified TLS only); `undefined` when it enforces and names none of them: the lane's messages
   * wait (451 4.7.5). A policy in `testing` mode changes nothing but a log line.
   */
  async #underPolicy(lane: Lane<J>, exchangers: readonly Exchanger[]): Promise<Route | undefined> {
    const sts = this.#options.mtaSts;
    if (sts === undefined || lane.domain === '') return { exchangers, enforced: false };
    const policy = await sts.policy(lane.domain);
    if (policy.mode === 'none') return { exchangers, enforced: false, policy };
    const named = await sts.named(policy, exchangers);
    if (policy.mode === 'testing') {
      if (named.length < exchangers.length)
        this.#options.connect.logger?.warn(
          { domain: lane.domain, mx: exchangers.map((e) => e.name), policy: policy.mx },
          'MTA-STS (testing): exchangers the policy does not name',
        );
      return { exchangers, enforced: false, policy, named };
    }
    if (named.length === 0) {
      const reply = `451 4.7.5 MTA-STS: the policy of ${lane.domain} names none of its exchangers (${exchangers.map((e) => e.name).join(', ')})`;
      this.#options.tlsReports?.record({
        domain: lane.domain,
        policy: { type: 'sts', text: policy.text, mx: policy.mx },
        failure: { type: 'validation-failure', mxHost: exchangers[0]?.name, reason: 'the policy names none of the exchangers' },
      });
      this.#failAll(lane, () => ({ code: 451, status: '4.7.5', reply }));
      return undefined;
    }
    return { exchangers: named, enforced: true, policy };
  }

  /**
   * What a session's TLS outcome counts as in the destination's TLS report: under its MTA-STS
   * policy, a failure when TLS did not verify (or would not have, in `testing` mode) or the
   * exchanger is not named; a policy that could not be had fails every session; without a
   * policy, only a session without TLS fails (or one not verified where verified TLS was asked).
   */
  #tlsOutcome(lane: Lane<J>, route: Route): ((outcome: TlsOutcome) => void) | undefined {
    const reports = this.#options.tlsReports;
    if (reports === undefined || lane.domain === '') return undefined;
    const policy = route.policy;
    return (o) => {
      const at = { mxHost: o.exchanger, receivingIp: o.address };
      let session: TlsSession;
      if (policy?.failure !== undefined) {
        session = { domain: lane.domain, policy: { type: 'sts', mx: [] }, failure: { ...at, ...policy.failure } };
      } else if (policy !== undefined && policy.mode !== 'none') {
        const unnamed = route.named !== undefined && !route.named.some((e) => e.name === o.exchanger);
        const failure =
          o.problem !== undefined
            ? { ...at, type: o.problem, reason: o.reason }
            : unnamed
              ? { ...at, type: 'validation-failure' as const, reason: 'the exchanger is not named by the policy' }
              : undefined;
        session = { domain: lane.domain, policy: { type: 'sts', text: policy.text, mx: policy.mx }, failure };
      } else {
        const failed = o.problem !== undefined && (o.problem === 'starttls-not-supported' || lane.verified);
        session = {
          domain: lane.domain,
          policy: { type: 'no-policy-found' },
          failure: failed ? { ...at, type: o.problem, reason: o.reason } : undefined,
        };
      }
      reports.record(session);
    };
  }

  /**
   * Opens a connection to the route's exchangers, over verified TLS when the lane or the policy
   * asks. Under a `testing` policy with TLS reports on, verified TLS is tried first, so the report
   * says what enforcing would have done; failing that, the message goes as before, unverified.
   */
  async #open(
    lane: Lane<J>,
    route: Route,
    tlsOutcome: ((o: TlsOutcome) => void) | undefined,
  ): Promise<OutboundConnection | ConnectFailure> {
    const verifiedTls = lane.verified || route.enforced;
    const connect = { ...this.#options.connect, verifiedTls, tlsOutcome };
    if (verifiedTls || tlsOutcome === undefined || route.policy?.mode !== 'testing')
      return OutboundConnection.open(route.exchangers, connect);
    const verified = await OutboundConnection.open(route.exchangers, { ...connect, verifiedTls: true });
    if (verified instanceof OutboundConnection) return verified;
    return OutboundConnection.open(route.exchangers, { ...this.#options.connect, verifiedTls: false });
  }

  async #run(lane: Lane<J>): Promise<void> {
    let destination;
    try {
      destination = await this.#options.resolver.destination(lane.domain === '' ? '.' : lane.domain);
    } catch (err) {
      destination = { kind: 'fail' as const, permanent: false, status: '4.4.3', text: `DNS lookup failed: ${(err as Error).message}` };
    }
    if (destination.kind === 'fail') {
      const code = destination.permanent ? 550 : 451;
      const reply = `${code} ${destination.status} ${destination.text}`;
      this.#failAll(lane, () => ({ code, status: destination.status, reply }));
      return;
    }
    const route = lane.report
      ? { exchangers: destination.exchangers, enforced: false }
      : await this.#underPolicy(lane, destination.exchangers);
    if (route === undefined) return;
    const tlsOutcome = lane.report ? undefined : this.#tlsOutcome(lane, route);
    let connection: OutboundConnection | undefined;
    try {
      for (let job = lane.jobs.shift(); job !== undefined; job = await this.#next(lane, connection)) {
        if (!(await this.#paced(lane))) {
          lane.jobs.unshift(job);
          this.#failAll(lane, () => CLOSING);
          return;
        }
        if (connection?.alive !== true) {
          connection?.close();
          const opened = await this.#open(lane, route, tlsOutcome);
          if (!(opened instanceof OutboundConnection)) {
            // No exchanger of this destination answers: the lane's other messages wait too.
            lane.jobs.unshift(job);
            this.#failAll(lane, (j) => connectFailureResult(j.entry.requireTls, opened));
            return;
          }
          connection = opened;
        }
        const { entry, recipients } = job;
        const message: OutgoingMessage = {
          from: entry.from,
          recipients: recipients.map((r) => ({ address: r.address, dsn: r.dsn })),
          ret: entry.ret,
          envid: entry.envid,
          requireTls: entry.requireTls,
          eightBit: entry.eightBit,
          size: entry.size + (entry.dkim?.length ?? 0) + (entry.head?.length ?? 0),
          content: () => this.#options.content(job),
          id: entry.id,
        };
        let results = await connection.send(message);
        if (entry.requireTls && connection.lacksRequireTls) {
          results = await requireTlsElsewhere(destination.exchangers, connection.exchanger, message, results, this.#options.connect);
        }
        this.#options.done(job, results);
      }
    } finally {
      connection?.close();
    }
  }
}
