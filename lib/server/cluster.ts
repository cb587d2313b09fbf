/**
 * Tornado-style multi-process serving over node:cluster: the primary forks workers that run the
 * same script, share the listening socket, and are replaced with the same task id when they die.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { MemoryLimitStore, type LimitStore } from '../app/limit-store.js';

const TASK_ENV = 'SIROCCO_TASK_ID';
/** The TLS session-ticket keys every worker shares, hex, given to each at fork. */
const TICKET_ENV = 'SIROCCO_TICKET_KEYS';
const TICKET_KEYS = 'sirocco:ticket-keys';
const SHUTDOWN = 'sirocco:shutdown';
const LIMITS = 'sirocco:limits';

/** A request for the primary's limit store, and its answer. */
interface LimitRequest {
  readonly type: typeof LIMITS;
  readonly id: number;
  readonly op: 'acquire' | 'release' | 'hit' | 'count';
  readonly key: string;
  readonly windowMs: number;
}

/**
 * @internal In a worker of `start(n)`: the limit counts, kept by the primary for every worker
 * (one round trip over node:cluster's channel per question).
 */
export class ClusterLimitStore implements LimitStore {
  readonly #waiting = new Map<number, (n: number) => void>();
  #next = 0;

  constructor() {
    process.on('message', (message: unknown) => {
      const m = message as { type?: unknown; id?: number; value?: number };
      if (m.type !== `${LIMITS}:reply` || m.id === undefined) return;
      const resolve = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      resolve?.(m.value ?? 0);
    });
  }

  #ask(op: LimitRequest['op'], key: string, windowMs = 0): Promise<number> {
    const id = ++this.#next;
    return new Promise<number>((resolve) => {
      this.#waiting.set(id, resolve);
      process.send?.({ type: LIMITS, id, op, key, windowMs } satisfies LimitRequest);
    });
  }

  acquire(key: string): Promise<number> {
    return this.#ask('acquire', key);
  }

  release(key: string): void {
    process.send?.({ type: LIMITS, id: 0, op: 'release', key, windowMs: 0 } satisfies LimitRequest);
  }

  hit(key: string, windowMs: number): Promise<number> {
    return this.#ask('hit', key, windowMs);
  }

  count(key: string, windowMs: number): Promise<number> {
    return this.#ask('count', key, windowMs);
  }
}

/**
 * In a worker started by `SMTPServer.start()`, its task id: `0` to `numProcesses - 1`, kept by a
 * replacement worker. `undefined` outside such a worker.
 *
 * @example
 * ```ts
 * const id = taskId();
 * if (id !== undefined) console.log(`worker ${id} serving`);
 * ```
 */
export function taskId(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const raw = process.env[TASK_ENV];
  return raw === undefined ? undefined : Number(raw);
}

/** @internal */
export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env[TASK_ENV] !== undefined;
}

/**
 * After a worker's server closed, how long it stays to answer connections the primary handed
 * it just before it heard of the close: the worker refuses them, so the primary gives them to
 * another worker. A worker that exited at once would leave such a connection with no one.
 */
const EXIT_GRACE_MS = 500;

/** @internal In a worker of `start(n)`: the TLS session-ticket keys every worker shares. */
export function sharedTicketKeys(): Buffer | undefined {
  const hex = isClusterWorker() ? process.env[TICKET_ENV] : undefined;
  return hex === undefined || hex.length !== 96 ? undefined : Buffer.from(hex, 'hex');
}

/** @internal In a worker: `use` gets the new ticket keys each time the primary rotates them. */
export function onTicketKeys(use: (keys: Buffer) => void): void {
  process.on('message', (message: unknown) => {
    const m = message as { type?: unknown; keys?: unknown };
    if (m.type === TICKET_KEYS && typeof m.keys === 'string') {
      process.env[TICKET_ENV] = m.keys;
      use(Buffer.from(m.keys, 'hex'));
    }
  });
}

/** @internal In a worker: runs `close` when the primary asks for a graceful stop, then exits. */
export function onShutdownRequest(close: () => Promise<void>): void {
  process.on('message', (message: unknown) => {
    if (message !== SHUTDOWN) return;
    void close().finally(() => setTimeout(() => process.exit(0), EXIT_GRACE_MS));
  });
}

/** @internal The supervising side. */
export class ClusterPrimary {
  readonly #log: Logger;
  readonly #maxRestarts: number;
  readonly #workers = new Map<number, Worker>();
  /** Workers being replaced by a rolling restart: their exit is expected. */
  readonly #retiring = new Set<Worker>();
  #restarts = 0;
  #stopping = false;
  /** The rolling restart under way, so a second request waits for it instead of interleaving. */
  #rolling: Promise<void> = Promise.resolve();
  /** The per-client counts every worker shares, and what each worker holds, given back when it exits. */
  readonly #limits = new MemoryLimitStore();
  readonly #held = new Map<Worker, Map<string, number>>();
  /** The session-ticket keys of every worker, rotated by a timer. */
  #ticketKeys = randomBytes(48);
  #rotation: NodeJS.Timeout | undefined;
  address: AddressInfo | string | null = null;

  constructor(log: Logger, maxRestarts: number, ticketKeyRotation = 12 * 60 * 60 * 1000) {
    this.#log = log;
    this.#maxRestarts = maxRestarts;
    this.#rotation = setInterval(() => this.#rotateTicketKeys(), ticketKeyRotation);
    this.#rotation.unref();
  }

  /** New ticket keys for every worker at once; a ticket issued under the old ones means a full handshake. */
  #rotateTicketKeys(): void {
    this.#ticketKeys = randomBytes(48);
    const keys = this.#ticketKeys.toString('hex');
    for (const worker of this.#workers.values()) if (worker.isConnected()) worker.send({ type: TICKET_KEYS, keys });
    this.#log.info('TLS session-ticket keys rotated');
  }

  /** Forks the workers; resolves once every one listens, rejects if one dies before it does. */
  async start(numProcesses: number): Promise<void> {
    const count = numProcesses === 0 ? availableParallelism() : numProcesses;
    await Promise.all(Array.from({ length: count }, (_, id) => this.#fork(id)));
    this.#log.info({ workers: count, address: this.address }, 'cluster started');
  }

  #fork(id: number): Promise<void> {
    const worker = cluster.fork({ [TASK_ENV]: String(id), [TICKET_ENV]: this.#ticketKeys.toString('hex') });
    this.#workers.set(id, worker);
    worker.on('message', (message: unknown) => this.#answerLimits(worker, message));
    return new Promise<void>((resolve, reject) => {
      let listening = false;
      worker.once('listening', (address: AddressInfo | string) => {
        listening = true;
        this.address ??= address;
        this.#log.info({ taskId: id, workerPid: worker.process.pid }, 'worker listening');
        resolve();
      });
      worker.once('exit', (code, signal) => {
        if (this.#workers.get(id) === worker) this.#workers.delete(id);
        // A worker that died held connections no longer open.
        for (const [key, n] of this.#held.get(worker) ?? []) for (let i = 0; i < n; i++) this.#limits.release(key);
        this.#held.delete(worker);
        if (this.#stopping || this.#retiring.delete(worker)) return;
        if (!listening) {
          reject(new Error(`worker ${id} exited (${signal ?? code}) before listening`));
          return;
        }
        this.#log.warn({ taskId: id, workerPid: worker.process.pid, code, signal }, 'worker died');
        if (this.#restarts >= this.#maxRestarts) {
          this.#log.error({ restarts: this.#restarts }, 'too many worker restarts; not replacing');
          return;
        }
        this.#restarts++;
        this.#fork(id).catch((err: unknown) => this.#log.error({ err, taskId: id }, 'replacement failed'));
      });
    });
  }

  #answerLimits(worker: Worker, message: unknown): void {
    const m = message as Partial<LimitRequest>;
    if (m.type !== LIMITS || typeof m.key !== 'string') return;
    const held = this.#held.get(worker) ?? new Map<string, number>();
    this.#held.set(worker, held);
    let value: number;
    switch (m.op) {
      case 'acquire':
        value = this.#limits.acquire(m.key);
        held.set(m.key, (held.get(m.key) ?? 0) + 1);
        break;
      case 'release': {
        const n = held.get(m.key) ?? 0;
        if (n === 0) return;
        this.#limits.release(m.key);
        if (n === 1) held.delete(m.key);
        else held.set(m.key, n - 1);
        return;
      }
      case 'hit':
        value = this.#limits.hit(m.key, m.windowMs ?? 0);
        break;
      case 'count':
        value = this.#limits.count(m.key, m.windowMs ?? 0);
        break;
      default:
        return;
    }
    if (worker.isConnected()) worker.send({ type: `${LIMITS}:reply`, id: m.id, value });
  }

  /**
   * Replaces the workers one at a time: the new one listens before the old one is asked to
   * close, so the port always has a worker accepting; the old one drains as `close()` does.
   */
  restart(): Promise<void> {
    this.#rolling = this.#rolling.then(() => this.#roll());
    return this.#rolling;
  }

  async #roll(): Promise<void> {
    this.#log.info({ workers: this.#workers.size }, 'rolling restart');
    for (const [id, old] of [...this.#workers.entries()].sort(([a], [b]) => a - b)) {
      if (this.#stopping) return;
      this.#retiring.add(old);
      try {
        await this.#fork(id);
      } catch (err) {
        // The new worker did not come up: the old one stays, and the restart stops here.
        this.#retiring.delete(old);
        this.#workers.set(id, old);
        this.#log.error({ err, taskId: id }, 'rolling restart stopped: the new worker did not listen');
        return;
      }
      await this.#retire(old);
    }
    this.#log.info('rolling restart done');
  }

  /** Asks one worker to close gracefully and waits for it to exit. */
  #retire(worker: Worker): Promise<void> {
    return new Promise<void>((resolve) => {
      if (worker.isDead()) {
        resolve();
        return;
      }
      worker.once('exit', () => resolve());
      worker.send(SHUTDOWN);
    });
  }

  /** Asks every worker to close gracefully and waits for all to exit. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#rotation);
    await Promise.all(
      [...this.#workers.values()].map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) {
              resolve();
              return;
            }
            worker.once('exit', () => resolve());
            worker.send(SHUTDOWN);
          }),
      ),
    );
  }
}
