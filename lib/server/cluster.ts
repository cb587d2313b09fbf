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
  #restarts = 0;
  #stopping = false;
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
        if (this.#stopping) return;
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
