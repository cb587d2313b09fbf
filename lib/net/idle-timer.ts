/**
 * The idle timeout of one connection, without a timer refresh per read: the connection bumps a
 * counter when the client sends something and when it replies, and a periodic check expires it
 * once `timeout` ms went by with no activity. Refreshing a Node timer on every read and write costs more than the rest of
 * handling a short command; this costs an increment.
 *
 * The check runs `TICKS` times per timeout, so a connection expires between `timeout` and
 * `timeout + timeout / TICKS` ms after the client last sent a byte, never earlier.
 */

/** Checks per timeout period: the precision of the expiry. */
const TICKS = 8;

export class IdleTimer {
  #activity = 0;
  #seen = 0;
  #quietTicks = 0;
  readonly #timer: NodeJS.Timeout;

  /**
   * @param timeout milliseconds of silence before `onIdle` runs (once).
   * @param busy whether the connection is waiting on the server (a handler, a TLS handshake):
   *   that time never counts as the client's silence.
   */
  constructor(timeout: number, busy: () => boolean, onIdle: () => void) {
    const period = Math.max(1, Math.ceil(timeout / TICKS));
    const ticks = Math.ceil(timeout / period);
    this.#timer = setInterval(() => {
      if (this.#activity !== this.#seen || busy()) {
        this.#seen = this.#activity;
        this.#quietTicks = 0;
      } else if (++this.#quietTicks >= ticks) {
        this.stop();
        onIdle();
      }
    }, period);
    this.#timer.unref();
  }

  /** The client sent something, or the server replied: the client's silence starts again. */
  touch(): void {
    this.#activity++;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
