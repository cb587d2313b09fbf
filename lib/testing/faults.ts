/**
 * Failures on purpose, for testing a client's retry and error paths: the next N connections or
 * transactions fail at a chosen step with a chosen reply, are dropped there, or are answered
 * slowly. Deterministic by default (plans apply in the order they were added, each to as many
 * occurrences as it says); a seeded random mode fails a share of them, the same ones for the same
 * seed.
 */
import { DropConnection } from '../app/errors.js';
import { SMTPError, type EnhancedCode } from '../protocol/reply.js';

/**
 * Where a fault strikes: before the greeting, at HELO/EHLO, MAIL, RCPT, DATA (instead of the
 * 354), or after the data (instead of the 250).
 *
 * @example
 * ```ts
 * const step: FaultStep = 'rcpt';
 * ```
 */
export type FaultStep = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'after-data';

const STEPS: readonly FaultStep[] = ['connect', 'helo', 'mail', 'rcpt', 'data', 'after-data'];

/**
 * One planned fault. Without `reply`, `drop` or `delayMs` it answers the step's usual temporary
 * failure (`421` at connect, `451 4.3.0` elsewhere).
 *
 * @example
 * ```ts
 * controller.faults.add({ at: 'rcpt', recipient: /@flaky\.test$/, reply: 452, times: 2 });
 * controller.faults.add({ at: 'after-data', drop: true });
 * controller.faults.add({ at: 'mail', delayMs: 3000, reply: 'none' });
 * ```
 */
export interface Fault {
  /** The step it strikes at. */
  readonly at: FaultStep;
  /**
   * The reply: a code (421, 450, 451, 452, 550, 552, 554 … with a standard text), an
   * `SMTPError` of your own, or `'none'` to only delay. 421 closes the connection after it.
   */
  readonly reply?: number | SMTPError | 'none';
  /** Drop the connection at that step, without a reply. */
  readonly drop?: boolean;
  /** Wait this long before the reply (or before going on, with `reply: 'none'`). */
  readonly delayMs?: number;
  /** How many occurrences it applies to. Default 1. */
  readonly times?: number;
  /** At `rcpt`: only for these recipients. */
  readonly recipient?: string | RegExp;
}

/**
 * A fault as {@link Faults.list} shows it: `left` for a planned one, `seed` and `rate` for a
 * random one; a recipient pattern as its source text (`/@flaky\.test$/`).
 *
 * @example
 * ```ts
 * const [next]: FaultListing[] = controller.faults.list();
 * console.log(next?.at, next?.left);
 * ```
 */
export interface FaultListing {
  /** The step it strikes at. */
  readonly at: FaultStep;
  /** The reply's code, `'none'`, or `null` for the step's usual one. */
  readonly reply: number | 'none' | null;
  /** Whether it drops the connection. */
  readonly drop: boolean;
  /** How long it waits first, in ms. */
  readonly delayMs: number;
  /** The recipient it is for (a pattern as its source text), or `null` for any. */
  readonly recipient: string | null;
  /** Occurrences still to fail (a planned fault). */
  readonly left?: number;
  /** The seed (a random fault). */
  readonly seed?: number;
  /** The share of occurrences that fail (a random fault). */
  readonly rate?: number;
}

/**
 * The seeded random mode: each occurrence of the step fails with probability `rate`.
 *
 * @example
 * ```ts
 * controller.faults.random({ seed: 42, rate: 0.3, at: 'after-data', reply: 451 });
 * ```
 */
export interface RandomFaults extends Omit<Fault, 'times'> {
  /** The seed: the same seed fails the same occurrences. */
  readonly seed: number;
  /** From 0 to 1. */
  readonly rate: number;
}

const TEXTS: Readonly<Record<number, [EnhancedCode, string]>> = {
  421: [[4, 3, 2], 'Service not available, closing connection (injected fault)'],
  450: [[4, 2, 1], 'Mailbox unavailable, try again later (injected fault)'],
  451: [[4, 3, 0], 'Temporary failure, try again later (injected fault)'],
  452: [[4, 3, 1], 'Insufficient system storage (injected fault)'],
  550: [[5, 1, 1], 'Mailbox unavailable (injected fault)'],
  552: [[5, 3, 4], 'Message too big (injected fault)'],
  553: [[5, 1, 3], 'Mailbox name not allowed (injected fault)'],
  554: [[5, 7, 1], 'Transaction failed (injected fault)'],
};

function errorFor(code: number): SMTPError {
  const known = TEXTS[code];
  const klass = Math.floor(code / 100) as 4 | 5;
  return known === undefined ? new SMTPError(code, [klass, 0, 0], `Failure (injected fault)`) : new SMTPError(code, known[0], known[1]);
}

function check(fault: Fault): void {
  if (!STEPS.includes(fault.at)) throw new RangeError(`Fault: at must be one of ${STEPS.join(', ')}, got ${String(fault.at)}`);
  const reply = fault.reply;
  if (typeof reply === 'number' && !(Number.isInteger(reply) && reply >= 400 && reply <= 599)) {
    throw new RangeError(`Fault: reply must be a 4xx or 5xx code, an SMTPError or 'none', got ${reply}`);
  }
  if (fault.delayMs !== undefined && !(Number.isFinite(fault.delayMs) && fault.delayMs >= 0)) {
    throw new RangeError(`Fault: delayMs must be a number of milliseconds, got ${String(fault.delayMs)}`);
  }
  if (fault.times !== undefined && !(Number.isInteger(fault.times) && fault.times > 0)) {
    throw new RangeError(`Fault: times must be a positive whole number, got ${String(fault.times)}`);
  }
  if (fault.recipient !== undefined && fault.at !== 'rcpt') throw new RangeError('Fault: recipient is for at: rcpt');
}

/** mulberry32: a small seeded generator, so a seed gives the same failures every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The faults a {@link Controller} injects (its `faults`). Empty by default: nothing fails.
 *
 * @example
 * ```ts
 * controller.faults.add({ at: 'after-data', reply: 451, times: 2 }); // the next two messages get 451
 * await sendWithRetries(message); // your code retries: the third attempt gets 250
 * expect(controller.faults.injected).toBe(2);
 * ```
 */
export class Faults {
  readonly #plans: { fault: Fault; left: number }[] = [];
  readonly #random: { fault: RandomFaults; next: () => number }[] = [];
  #injected = 0;
  /** While the Controller checks that its server greets: that connection is not the tests'. */
  #paused = false;

  /** @internal */
  set paused(value: boolean) {
    this.#paused = value;
  }

  /** Plans a fault for the next `times` occurrences of its step (after the plans already there). */
  add(fault: Fault): this {
    check(fault);
    this.#plans.push({ fault, left: fault.times ?? 1 });
    return this;
  }

  /** Fails each occurrence of the step with probability `rate`, drawn from `seed`. */
  random(fault: RandomFaults): this {
    check(fault);
    if (!(fault.rate >= 0 && fault.rate <= 1)) throw new RangeError(`Faults.random: rate must be from 0 to 1, got ${String(fault.rate)}`);
    if (!Number.isInteger(fault.seed)) throw new RangeError(`Faults.random: seed must be a whole number, got ${String(fault.seed)}`);
    this.#random.push({ fault, next: seeded(fault.seed) });
    return this;
  }

  /** Removes every plan. */
  clear(): void {
    this.#plans.length = 0;
    this.#random.length = 0;
  }

  /** The plans still to strike, then the random ones, as data (what the HTTP API lists). */
  list(): FaultListing[] {
    const shown = (f: Fault): FaultListing => ({
      at: f.at,
      reply: f.reply instanceof SMTPError ? f.reply.code : (f.reply ?? null),
      drop: f.drop === true,
      delayMs: f.delayMs ?? 0,
      recipient: f.recipient === undefined ? null : f.recipient.toString(),
    });
    return [
      ...this.#plans.filter((p) => p.left > 0).map((p) => ({ ...shown(p.fault), left: p.left })),
      ...this.#random.map((r) => ({ ...shown(r.fault), seed: r.fault.seed, rate: r.fault.rate })),
    ];
  }

  /** Planned occurrences still to fail (the random mode not counted). */
  get pending(): number {
    return this.#plans.reduce((sum, p) => sum + p.left, 0);
  }

  /** How many faults were injected so far. */
  get injected(): number {
    return this.#injected;
  }

  /**
   * @internal At `step` (with the recipient at RCPT): waits, then throws the fault's reply (an
   * `SMTPError`, or `DropConnection`), when a fault applies; else resolves at once.
   */
  strike(step: FaultStep, recipient?: string): Promise<void> | undefined {
    if (this.#paused) return undefined;
    const applies = (f: Fault): boolean =>
      f.at === step &&
      (f.recipient === undefined ||
        (recipient !== undefined &&
          (typeof f.recipient === 'string' ? f.recipient.toLowerCase() === recipient.toLowerCase() : f.recipient.test(recipient))));
    let fault: Fault | undefined;
    const plan = this.#plans.find((p) => p.left > 0 && applies(p.fault));
    if (plan !== undefined) {
      plan.left--;
      fault = plan.fault;
    } else {
      fault = this.#random.find((r) => applies(r.fault) && r.next() < r.fault.rate)?.fault;
    }
    if (fault === undefined) return undefined;
    this.#injected++;
    const chosen = fault;
    const act = (): void => {
      if (chosen.drop === true) throw new DropConnection('connection dropped (injected fault)');
      if (chosen.reply === 'none') return;
      if (chosen.reply instanceof SMTPError) throw chosen.reply;
      throw errorFor(chosen.reply ?? (step === 'connect' ? 421 : 451));
    };
    const delay = chosen.delayMs ?? 0;
    return new Promise<void>((resolve) => setTimeout(resolve, delay)).then(act);
  }
}
