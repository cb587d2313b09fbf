/**
 * The input pump, shared by every protocol of the connection kit: bytes from the socket into the
 * line splitter, then one unit of input at a time (a command line, or the message data) through
 * the connection, strictly in order. It runs synchronously while hooks return at once; a hook's
 * promise stops it until the promise settles, and meanwhile new bytes wait in the splitter
 * (reading pauses past `maxBufferedBytes`, so a client pipelining without end cannot grow
 * memory). Replies are flushed once `OUTPUT_HIGH_WATER` of them is queued, and no unit runs
 * while the client has not read what was written: a client that sends without reading holds at
 * most one batch of replies and one read of input here, whatever it sends.
 */
import type { Socket } from 'node:net';
import type { Maybe } from '../app/maybe.js';
import type { ReadBufferRecycler } from '../app/lent-chunks.js';
import type { LineSplitter } from '../protocol/line-splitter.js';
import { giveBack, isReadBuffer } from './reader.js';

/** A unit's outcome: done now (`undefined`), a hook running (its promise), or no complete unit. */
export type StepResult = Promise<void> | undefined | typeof DRY;
export const DRY = Symbol('dry');

/** Queued reply text past which replies are written before the next unit runs. */
export const OUTPUT_HIGH_WATER = 16 * 1024;

/** A unit's outcome as a hook's: `DRY` (nothing more to run now) counts as done. */
export function asPending(result: StepResult): Promise<void> | undefined {
  return result === DRY ? undefined : result;
}

/** What the pump drives. */
export interface PumpDriver {
  /** The socket read now (it changes with STARTTLS). */
  socket(): Socket;
  /** Whether units may run: the connection is open and no TLS handshake is under way. */
  running(): boolean;
  /** Whether the client must read its replies before we read more. */
  waitingForDrain(): boolean;
  /** Runs the next unit of input. */
  step(): StepResult;
  /** After each unit: a graceful shutdown waits for the transaction to end. */
  afterStep(): void;
  /** A unit threw: the connection cannot go on. */
  failed(err: unknown): void;
  /** The input ran dry or a hook started to wait: send what is due. */
  flush(): void;
  /** How much reply text is queued and not yet written. */
  queued(): number;
}

export class InputPump implements ReadBufferRecycler {
  readonly #lines: LineSplitter;
  readonly #maxBuffered: number;
  readonly #driver: PumpDriver;
  #busy = false;
  #hookRunning = false;

  constructor(lines: LineSplitter, maxBuffered: number, driver: PumpDriver) {
    this.#lines = lines;
    this.#maxBuffered = maxBuffered;
    this.#driver = driver;
  }

  /** Whether units are running or a hook is awaited. */
  get busy(): boolean {
    return this.#busy;
  }

  /** Whether a hook is running: the client waits for us, so its idle clock stops. */
  get hookRunning(): boolean {
    return this.#hookRunning;
  }

  /** New bytes from the client. */
  push(chunk: Buffer): void {
    this.#lines.push(chunk);
    if (!this.#busy) {
      this.run();
    } else if (this.#lines.buffered > this.#maxBuffered) {
      // A hook is running, or a streaming handler reads slower than the client sends: stop
      // reading until it has caught up, so the client waits and no buffer grows.
      this.#driver.socket().pause();
    }
  }

  /**
   * The first `length` bytes of `read`, a read buffer lent for the time of the call
   * (lib/net/reader.ts), while nothing runs: its lines run at once, and what is left of it is
   * copied before the call returns (see LineSplitter.pushLent).
   */
  pushLent(read: Buffer, length: number): void {
    this.#lines.pushLent(read, length);
    try {
      this.run();
    } finally {
      this.#lines.endLoan();
    }
  }

  /** Runs `first` (a unit that is not input, such as a connection hook), then every unit buffered. */
  run(first?: () => StepResult): void {
    this.#busy = true;
    let pending: StepResult;
    try {
      pending = first === undefined ? this.#units() : first();
      if (pending === undefined) pending = this.#units();
    } catch (err) {
      this.#driver.failed(err);
      pending = DRY;
    }
    if (pending === DRY) {
      this.#idle();
      return;
    }
    pending.then(
      () => {
        this.#driver.afterStep();
        this.run();
      },
      (err: unknown) => {
        this.#driver.failed(err);
        this.#idle();
      },
    );
  }

  /** Runs units until the input runs dry (`DRY`) or a hook is still running (its promise). */
  #units(): Promise<void> | typeof DRY {
    const driver = this.#driver;
    // A client that does not read its replies is not read either: what it sent waits (see drained()).
    while (driver.running() && !driver.waitingForDrain()) {
      const pending = driver.step();
      if (pending === DRY) break;
      if (pending !== undefined) return pending;
      driver.afterStep();
      if (driver.queued() >= OUTPUT_HIGH_WATER) driver.flush();
    }
    return DRY;
  }

  /**
   * Continues with `then` now, or once `value` settles if the connection is still open; replies
   * due so far go out first, and the idle clock stops while the client waits for the hook (but
   * not while it waits for a streaming handler to read: a reader stuck for `idleTimeout` ends
   * the connection like a silent client).
   */
  wait<T>(value: Maybe<T>, then: (v: T) => Promise<void> | undefined, stopsIdleClock = true): Promise<void> | undefined {
    if (!(value instanceof Promise)) return then(value);
    this.#driver.flush();
    this.#hookRunning = stopsIdleClock;
    return value.then(
      (v) => {
        this.#hookRunning = false;
        return this.#driver.running() ? then(v) : undefined;
      },
      (err: unknown) => {
        this.#hookRunning = false;
        throw err;
      },
    );
  }

  /** The input ran dry: send what is due, let go of spare memory, and read again. */
  #idle(): void {
    this.#busy = false;
    this.#lines.compact();
    this.#driver.flush();
    this.resume();
  }

  /** Whether `backing` is a read buffer of the socket's own, which {@link recycle} may give back. */
  owns(backing: ArrayBufferLike): boolean {
    return isReadBuffer(this.#driver.socket(), backing);
  }

  /** A lending reader is done with every part of `backing`: the socket reads into it again, unless input waiting here is in it. */
  recycle(backing: ArrayBufferLike): void {
    if (!this.#lines.holds(backing)) giveBack(this.#driver.socket(), backing);
  }

  /** The client read what was written: the units that waited for it run, then reading goes on. */
  drained(): void {
    if (this.#busy) this.resume();
    else this.run();
  }

  /** Reads again unless the connection waits for something else. */
  resume(): void {
    const driver = this.#driver;
    if (!driver.running() || driver.waitingForDrain()) return;
    const socket = driver.socket();
    if (this.#lines.buffered <= this.#maxBuffered && socket.isPaused()) socket.resume();
  }
}
