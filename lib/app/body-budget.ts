/**
 * The memory budget for message bodies held whole: every buffered handler's body counts against
 * one limit per {@link Application} (one per process in the usual set-up), so no number of
 * clients can make the process hold more than the budget in bodies. A transaction that would pass
 * it is answered `452 4.3.1` (insufficient system storage, RFC 3463): at DATA or BDAT when the
 * budget is already spent or the declared SIZE cannot fit, else after the end of the data. Bodies
 * read by streaming handlers are not held and do not count. What is counted is the memory a held
 * body keeps alive (each read buffer its parts are views of), and the joined body.
 *
 * @example
 * ```ts
 * setInterval(() => app.logger.info({ held: app.bodyBudget.held, refusals: app.bodyBudget.refusals }), 60_000);
 * ```
 */
export class BodyBudget {
  /** The budget in bytes. */
  readonly limit: number;
  #held = 0;
  #refusals = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes of bodies held now. */
  get held(): number {
    return this.#held;
  }

  /** Transactions answered 452 4.3.1 so far for want of budget. */
  get refusals(): number {
    return this.#refusals;
  }

  /** Whether a new body of `declared` bytes (0 when unknown) may start. */
  admits(declared: number): boolean {
    return this.#held < this.limit && this.#held + declared <= this.limit;
  }

  /** Counts `bytes` more; `false` (and nothing counted) when they would pass the budget. */
  take(bytes: number): boolean {
    if (this.#held + bytes > this.limit) return false;
    this.#held += bytes;
    return true;
  }

  /** A held body was let go. */
  release(bytes: number): void {
    this.#held = Math.max(0, this.#held - bytes);
  }

  /** A transaction was answered 452 4.3.1 for want of budget. */
  refused(): void {
    this.#refusals++;
  }
}
