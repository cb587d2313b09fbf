/**
 * The outbound queue at work: claims what is due from the {@link Spool}, sorts each message's
 * recipients by domain, and delivers them in lanes, one per destination (several messages share
 * a lane's connection), within a limit of connections per destination and in all. Each outcome is
 * written back before the next step, so a crash re-sends at most the message that was on the wire.
 * Temporary failures wait for the retry schedule; permanent and expired ones bounce to the sender.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { ConnectOptions, RecipientResult } from './client.js';
import type { MtaSts } from './mta-sts.js';
import { Lanes, type LaneJob, type RateCounts, type SharedCounts } from './lanes.js';
import { noticeMessage, recipientsToTell, type NoticeKind } from './notices.js';
import { MxResolver, type ResolverOptions } from './resolver.js';
import { afterFailure, delayNoticeDue, type RetryPolicy } from './schedule.js';
import type { DkimSigner } from '../auth/sign.js';
import { signed, withPrepended } from './queue-dkim.js';
import { newSpoolId, Spool, type Claim, type ListedMessage, type QueueEntry, type QueuedRecipient } from './spool.js';
import type { NewMessage } from './queue-entry.js';
import type { SentTlsReport, TlsReporter } from './tls-reporter.js';

export type { NewMessage } from './queue-entry.js';

/** How a queue delivers. */
export interface QueueOptions {
  /** The queue's folder (made if missing). */
  readonly dir: string;
  /** This host's name: in EHLO and as the Reporting-MTA of bounces. */
  readonly hostname: string;
  readonly policy: RetryPolicy;
  readonly resolver?: ResolverOptions | undefined;
  /** Port, TLS options and timeouts of outbound connections. */
  readonly connect?: Omit<ConnectOptions, 'heloName' | 'verifiedTls' | 'logger'> | undefined;
  /** Domains reached only over verified TLS (a failure to get it is temporary, 4.7.5). */
  readonly requireTlsDomains?: readonly string[] | undefined;
  /** Connections open at once, in all. Default 20. */
  readonly concurrency?: number | undefined;
  /** Connections open at once to one destination. Default 4. */
  readonly perDestination?: number | undefined;
  /** Counts `perDestination` across the hosts sharing it (a shared `LimitStore`, Redis for a fleet). */
  readonly sharedCounts?: SharedCounts | undefined;
  /** Messages per minute to one destination, counted in `counts` (a fleet's shared store, or this process's). */
  readonly ratePerDestination?: { readonly perMinute: number; readonly counts: RateCounts } | undefined;
  /** How often the queue folder is looked at for due messages, ms. Default 5000. */
  readonly scanInterval?: number | undefined;
  /** Signs each message with the DKIM keys of its From: domain when it is queued. */
  readonly dkim?: DkimSigner | undefined;
  /** MTA-STS policies of the destinations (RFC 8461). */
  readonly mtaSts?: MtaSts | undefined;
  /** Counts the TLS outcome of each session and sends the destinations their reports (RFC 8460). */
  readonly tlsReporter?: TlsReporter | undefined;
  readonly logger: Logger;
}

/** A claimed message while its domains are served. */
interface InFlight {
  readonly claim: Claim;
  outstanding: number;
  readonly failed: QueuedRecipient[];
  /** Taken by an exchanger without DSN: those with NOTIFY=SUCCESS are told in a `relayed` notice at the end of the attempt. */
  readonly relayed: QueuedRecipient[];
  chain: Promise<void>;
}

interface Job extends LaneJob {
  readonly message: InFlight;
}

/** Messages claimed at once by one process, so that other processes get their share. */
const CLAIM_MAX = 200;
const RECOVER_EVERY = 30_000;
/** The returned part of a bounce without RET=FULL is the header section: this much is read for it. */
const HEAD_READ = 64 * 1024;

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(at + 1).toLowerCase();
}

/**
 * A durable outbound queue: what {@link Deliver} puts messages in and delivers from. Get an
 * application's with {@link deliveryQueue}.
 *
 * @example
 * ```ts
 * const queue = deliveryQueue(app);
 * for (const { entry, active } of await queue.list()) console.log(entry.id, active ? 'sending' : new Date(entry.nextAttemptAt));
 * ```
 */
export class OutboundQueue {
  /** @internal The files. */
  readonly spool: Spool;
  readonly #options: QueueOptions;
  readonly #log: Logger;
  readonly #lanes: Lanes<Job>;
  readonly #requireTls: Set<string>;
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #scanning = false;
  #again = false;
  #closed = false;
  #started = false;
  #lastRecover = 0;
  #drained: (() => void) | undefined;

  /** @internal Made by {@link deliveryQueue}. */
  constructor(options: QueueOptions) {
    this.#options = options;
    this.spool = new Spool(options.dir);
    this.spool.onQuarantine = (file, reason) => this.#log.error({ file, reason }, 'a queue state file cannot be read; moved to quarantine');
    this.#lanes = new Lanes<Job>({
      resolver: new MxResolver({ ...options.resolver, self: options.hostname }),
      connect: { ...options.connect, heloName: options.hostname, logger: options.logger },
      concurrency: options.concurrency ?? 20,
      perDestination: options.perDestination ?? 4,
      shared: options.sharedCounts,
      rate: options.ratePerDestination,
      mtaSts: options.mtaSts,
      tlsReports: options.tlsReporter,
      content: (job) =>
        withPrepended(`${job.entry.head ?? ''}${job.entry.dkim ?? ''}`, createReadStream(this.spool.dataPath(job.message.claim.id))),
      done: (job, results) => this.#done(job, results),
    });
    this.#log = options.logger;
    this.#requireTls = new Set((options.requireTlsDomains ?? []).map((d) => d.toLowerCase()));
  }

  /** @internal Starts delivering (the server does, through {@link Deliver.startService}): what is due now, then a look at the folder every `scanInterval`. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#timer = setInterval(() => this.kick(), this.#options.scanInterval ?? 5000);
    this.#timer.unref();
    this.#options.tlsReporter?.start();
    this.kick();
  }

  /** Looks for due messages now (a new one was queued, or an operator asked); nothing before the server starts the queue. */
  kick(): void {
    void this.#scan();
  }

  /**
   * Puts a message in the queue, flushed to disk before this resolves, and starts its delivery.
   * Resolves to its queue id.
   */
  async enqueue(message: NewMessage, content: AsyncIterable<Uint8Array> | Uint8Array): Promise<string> {
    const now = Date.now();
    const seen = new Set<string>();
    const recipients: QueuedRecipient[] = [];
    for (const r of message.recipients) {
      if (seen.has(r.address)) continue;
      seen.add(r.address);
      recipients.push({ address: r.address, ...(r.dsn === undefined ? {} : { dsn: r.dsn }), state: 'pending' });
    }
    const entry = {
      id: newSpoolId(),
      from: message.from,
      recipients,
      ...(message.ret === undefined ? {} : { ret: message.ret }),
      ...(message.envid === undefined ? {} : { envid: message.envid }),
      requireTls: message.requireTls === true,
      ...(message.unverifiedSender === true ? { unverifiedSender: true } : {}),
      ...(message.tlsReport === true && message.requireTls !== true ? { tlsReport: true } : {}),
      eightBit: message.eightBit === true,
      queuedAt: now,
      attempts: 0,
      nextAttemptAt: now,
    };
    const signer = this.#options.dkim;
    const head = message.head;
    await this.spool.add(entry, content, async (data) => {
      const fields = head === undefined ? '' : await head();
      return { ...(fields === '' ? {} : { head: fields }), ...(signer === undefined ? {} : await signed(signer, data)) };
    });
    this.kick();
    return entry.id;
  }

  /** Every queued message, waiting or being delivered now (`active`), oldest first. */
  list(): Promise<ListedMessage[]> {
    return this.spool.list();
  }

  /** For a readiness check: why the queue cannot take a message now, or `undefined` when it can. */
  notReady(): Promise<string | undefined> {
    return this.#closed ? Promise.resolve('outbound queue closed') : this.spool.notWritable();
  }

  /**
   * Sends now the TLS reports (RFC 8460) of what was counted so far, the current period's too,
   * as the queue does by itself after each period; resolves to what was handed on (nothing when
   * `tlsReporting` is off).
   */
  sendTlsReports(): Promise<SentTlsReport[]> {
    return this.#options.tlsReporter?.send() ?? Promise.resolve([]);
  }

  /** Stops claiming; resolves once the messages being delivered are written back (at most `waitMs`), and TLS report counts are kept. */
  async close(waitMs = 30_000): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#lanes.close();
    if (this.#inFlight > 0) {
      const drained = new Promise<void>((resolve) => (this.#drained = resolve));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      clearTimeout(timer);
    }
    await this.#options.tlsReporter?.close();
  }

  async #scan(): Promise<void> {
    if (this.#closed || !this.#started) return;
    if (this.#scanning) {
      this.#again = true;
      return;
    }
    this.#scanning = true;
    try {
      do {
        this.#again = false;
        if (Date.now() - this.#lastRecover >= RECOVER_EVERY) {
          this.#lastRecover = Date.now();
          const recovered = await this.spool.recover();
          if (recovered > 0) this.#log.warn({ recovered }, 'took back messages claimed by a process that is gone');
        }
        const room = CLAIM_MAX - this.#inFlight;
        if (room <= 0) break;
        for (const name of await this.spool.due(Date.now(), room)) {
          if (this.#closed) break;
          const claim = await this.spool.claim(name);
          if (claim !== undefined) this.#begin(claim);
        }
      } while (this.#again && !this.#closed);
    } catch (err) {
      this.#log.error({ err }, 'outbound queue scan failed');
    } finally {
      this.#scanning = false;
    }
  }

  #begin(claim: Claim): void {
    this.#inFlight++;
    claim.entry.attempts++;
    const message: InFlight = { claim, outstanding: 0, failed: [], relayed: [], chain: Promise.resolve() };
    const byDomain = new Map<string, QueuedRecipient[]>();
    for (const recipient of claim.entry.recipients) {
      if (recipient.state !== 'pending') continue;
      const domain = domainOf(recipient.address);
      const list = byDomain.get(domain) ?? [];
      list.push(recipient);
      byDomain.set(domain, list);
    }
    message.outstanding = byDomain.size;
    if (byDomain.size === 0) {
      this.#settle(message, () => this.#finalize(message));
      return;
    }
    for (const [domain, recipients] of byDomain) {
      const kind = claim.entry.tlsReport === true ? 'report' : claim.entry.requireTls || this.#requireTls.has(domain) ? 'verified' : 'open';
      this.#lanes.add(domain, kind, { message, entry: claim.entry, recipients });
    }
  }

  /** Records a job's results; the last job of a message settles it, the others write progress. */
  #done(job: Job, results: readonly RecipientResult[]): void {
    const message = job.message;
    for (const result of results) {
      const recipient = job.recipients.find((r) => r.address === result.recipient);
      if (recipient === undefined) continue;
      recipient.code = result.code;
      recipient.status = result.status;
      recipient.reply = result.reply;
      if (result.exchanger !== undefined) recipient.exchanger = result.exchanger;
      if (result.code < 400) {
        recipient.state = 'sent';
        if (result.relayed === true) message.relayed.push(recipient);
      } else if (result.code >= 500) {
        recipient.state = 'failed';
        message.failed.push(recipient);
      }
      // A refusal is for the operator to see; a delivery or a deferral is the queue at work.
      const fields = {
        outboundId: message.claim.id,
        to: result.recipient,
        exchanger: result.exchanger,
        code: result.code,
        status: result.status,
      };
      if (result.code >= 500) this.#log.warn(fields, 'refused');
      else this.#log.info(fields, result.code < 400 ? 'delivered' : 'deferred');
    }
    message.outstanding--;
    this.#settle(message, () => (message.outstanding > 0 ? this.spool.update(message.claim) : this.#finalize(message)));
  }

  /** Runs a message's writes one after the other. */
  #settle(message: InFlight, step: () => Promise<void>): void {
    message.chain = message.chain.then(step).catch((err: unknown) => {
      this.#log.error({ err, outboundId: message.claim.id }, 'outbound queue could not write a message back; it will be retried');
    });
  }

  async #finalize(message: InFlight): Promise<void> {
    const { entry } = message.claim;
    const now = Date.now();
    try {
      const pending = entry.recipients.filter((r) => r.state === 'pending');
      let retry = false;
      if (pending.length > 0) {
        const decision = afterFailure(this.#options.policy, entry.queuedAt, entry.attempts, now);
        if (decision.retry) {
          retry = true;
          entry.nextAttemptAt = decision.at;
          if (entry.delayNoticeSent !== true && delayNoticeDue(this.#options.policy, entry.queuedAt, now)) {
            entry.delayNoticeSent = true;
            await this.#notify(entry, pending, 'delayed');
          }
        } else {
          for (const r of pending) {
            r.state = 'failed';
            r.status = '4.4.7';
            r.reply = `message expired after ${entry.attempts} attempts; last reply: ${r.reply ?? 'none'}`;
            message.failed.push(r);
            this.#log.warn({ outboundId: entry.id, to: r.address, attempts: entry.attempts, reply: r.reply }, 'expired');
          }
        }
      }
      if (message.failed.length > 0) await this.#notify(entry, message.failed, 'failed');
      if (message.relayed.length > 0) await this.#notify(entry, message.relayed, 'relayed');
      if (retry) await this.spool.release(message.claim);
      else await this.spool.complete(message.claim);
      this.#log.info(
        {
          outboundId: entry.id,
          attempts: entry.attempts,
          pending: retry ? pending.length : 0,
          next: retry ? new Date(entry.nextAttemptAt) : undefined,
        },
        retry ? 'message waits for a retry' : 'message done',
      );
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) this.#drained?.();
      if (!this.#closed) this.kick();
    }
  }

  /** Queues a delivery status notification to the sender, as its NOTIFY allows (RFC 3461 §4.1). */
  async #notify(entry: QueueEntry, recipients: readonly QueuedRecipient[], kind: NoticeKind): Promise<void> {
    const told = recipientsToTell(recipients, kind);
    if (told.length === 0) return;
    if (entry.from === '') {
      this.#log.warn({ outboundId: entry.id }, `no ${kind} notice for a message from the null sender`);
      return;
    }
    if (entry.unverifiedSender === true) {
      this.#log.warn(
        { outboundId: entry.id, recipients: told.map((r) => r.address) },
        `no ${kind} notice: the sender of an outside client was never verified`,
      );
      return;
    }
    const notice = noticeMessage(entry, told, kind, await this.#original(entry), this.#options.hostname, this.#options.policy.lifetime);
    const id = await this.enqueue({ from: '', recipients: [{ address: entry.from }] }, notice);
    this.#log.info({ outboundId: entry.id, notice: id, to: entry.from, recipients: told.length }, `${kind} notice queued`);
  }

  /** The original message as a bounce returns it: whole for RET=FULL, else enough for its header section. */
  async #original(entry: QueueEntry): Promise<Buffer> {
    const file = await open(this.spool.dataPath(entry.id), 'r');
    try {
      const length = entry.ret === 'FULL' ? entry.size : Math.min(entry.size, HEAD_READ);
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await file.read(buffer, 0, length, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  }
}
