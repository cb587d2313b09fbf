/**
 * Tornado-style multi-process serving over node:cluster: the primary forks workers that run the
 * same script, share the listening socket, and are replaced with the same task id when they die.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

const TASK_ENV = 'SIROCCO_TASK_ID';
const SHUTDOWN = 'sirocco:shutdown';

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

/** @internal In a worker: runs `close` when the primary asks for a graceful stop, then exits. */
export function onShutdownRequest(close: () => Promise<void>): void {
  process.on('message', (message: unknown) => {
    if (message !== SHUTDOWN) return;
    void close().finally(() => process.exit(0));
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
  address: AddressInfo | string | null = null;

  constructor(log: Logger, maxRestarts: number) {
    this.#log = log;
    this.#maxRestarts = maxRestarts;
  }

  /** Forks the workers; resolves once every one listens, rejects if one dies before it does. */
  async start(numProcesses: number): Promise<void> {
    const count = numProcesses === 0 ? availableParallelism() : numProcesses;
    await Promise.all(Array.from({ length: count }, (_, id) => this.#fork(id)));
    this.#log.info({ workers: count, address: this.address }, 'cluster started');
  }

  #fork(id: number): Promise<void> {
    const worker = cluster.fork({ [TASK_ENV]: String(id) });
    this.#workers.set(id, worker);
    return new Promise<void>((resolve, reject) => {
      let listening = false;
      worker.once('listening', (address: AddressInfo | string) => {
        listening = true;
        this.address ??= address;
        this.#log.info({ taskId: id, pid: worker.process.pid }, 'worker listening');
        resolve();
      });
      worker.once('exit', (code, signal) => {
        if (this.#workers.get(id) === worker) this.#workers.delete(id);
        if (this.#stopping || this.#retiring.delete(worker)) return;
        if (!listening) {
          reject(new Error(`worker ${id} exited (${signal ?? code}) before listening`));
          return;
        }
        this.#log.warn({ taskId: id, code, signal }, 'worker died');
        if (this.#restarts >= this.#maxRestarts) {
          this.#log.error({ restarts: this.#restarts }, 'too many worker restarts; not replacing');
          return;
        }
        this.#restarts++;
        this.#fork(id).catch((err: unknown) => this.#log.error({ err, taskId: id }, 'replacement failed'));
      });
    });
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
