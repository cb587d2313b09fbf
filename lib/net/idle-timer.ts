/**
 * The idle timeout of one connection, without a timer refresh per read: the connection bumps a
 * counter when the client sends something and when it replies, and a periodic check expires it
 * once `timeout` ms went by with no activity. Refreshing a Node timer on every read and write costs more than the rest of
 * handling a short command; this costs an increment.
 *
 * The check runs `TICKS` times per timeout, so a connection expires between `timeout` and
 * `timeout + timeout / TICKS` ms after the client last sent a byte, never earlier.
 *
 * Connections with the same timeout share one Node interval (a {@link Clock}): a connection costs
 * a place in a set, not a timer of its own with its closure, which was a third of what an idle
 * connection held beyond its socket.
 */

/** The connection a timer watches. */
export interface IdleOwner {
  /**
   * Whether the connection is waiting on the server (a handler, a TLS handshake): that time never
   * counts as the client's silence.
   */
  waitingOnServer(): boolean;
  /** The client was silent for the whole timeout (called once). */
  idleExpired(): void;
}

/** Checks per timeout period: the precision of the expiry. */
const TICKS = 8;

/** One interval for every timer of the same period, stopped when the last one leaves. */
class Clock {
  readonly members = new Set<IdleTimer>();
  readonly #timer: NodeJS.Timeout;

  constructor(period: number) {
    this.#timer = setInterval(() => {
      for (const member of this.members) member.tick();
    }, period);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** The clocks running now, by period in ms. */
const clocks = new Map<number, Clock>();

export class IdleTimer {
  /** Starts at 1 so the first check, which may come any time within a period, starts the count instead of counting. */
  #activity = 1;
  #seen = 0;
  #quietTicks = 0;
  readonly #ticks: number;
  readonly #owner: IdleOwner;
  #clock: Clock | null;
  readonly #period: number;

  /**
   * @param timeout milliseconds of silence before the owner's `idleExpired` runs (once).
   * @param owner the connection itself, so a connection makes no closures for its timer.
   */
  constructor(timeout: number, owner: IdleOwner) {
    const period = (this.#period = Math.max(1, Math.ceil(timeout / TICKS)));
    this.#ticks = Math.ceil(timeout / period);
    this.#owner = owner;
    let clock = clocks.get(period);
    if (clock === undefined) clocks.set(period, (clock = new Clock(period)));
    clock.members.add(this);
    this.#clock = clock;
  }

  /** The client sent something, or the server replied: the client's silence starts again. */
  touch(): void {
    this.#activity++;
  }

  /** One check, by the clock. */
  tick(): void {
    if (this.#activity !== this.#seen || this.#owner.waitingOnServer()) {
      this.#seen = this.#activity;
      this.#quietTicks = 0;
    } else if (++this.#quietTicks >= this.#ticks) {
      this.stop();
      this.#owner.idleExpired();
    }
  }

  stop(): void {
    const clock = this.#clock;
    if (clock === null) return;
    this.#clock = null;
    clock.members.delete(this);
    if (clock.members.size === 0 && clocks.get(this.#period) === clock) {
      clocks.delete(this.#period);
      clock.stop();
    }
  }
}
