import { TrustedPeers } from '../app/trusted-peers.js';

/** Wrong passwords per client address in a sliding window (in this process). */
export class AuthFailures {
  readonly #limit: number;
  readonly #window: number;
  readonly #exempt: TrustedPeers;
  readonly #seen = new Map<string, number[]>();

  constructor(limit: number, window: number, exempt: TrustedPeers) {
    this.#limit = limit;
    this.#window = window;
    this.#exempt = exempt;
  }

  #recent(address: string): number[] {
    const since = Date.now() - this.#window;
    const times = (this.#seen.get(address) ?? []).filter((t) => t > since);
    if (times.length === 0) this.#seen.delete(address);
    else this.#seen.set(address, times);
    return times;
  }

  over(address: string): boolean {
    return this.#limit > 0 && !this.#exempt.has(address) && this.#recent(address).length >= this.#limit;
  }

  count(address: string): void {
    if (this.#limit === 0 || this.#exempt.has(address)) return;
    // Bounded: past 10,000 addresses the oldest record is forgotten.
    if (!this.#seen.has(address) && this.#seen.size >= 10_000) this.#seen.delete(this.#seen.keys().next().value ?? '');
    this.#seen.set(address, [...this.#recent(address), Date.now()]);
  }
}
