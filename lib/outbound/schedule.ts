/**
 * When a message waiting in the queue is tried again, when it is given up (RFC 5321 §4.5.4.1:
 * retry for at least 4–5 days, the first retry after at least 30 minutes unless the operator says
 * otherwise), and when a "delayed" notice is due. Pure: times in, times out.
 */

/** The retry policy, in seconds. */
export interface RetryPolicy {
  /** The waits after the 1st, 2nd, … failed attempt; the last one repeats. */
  readonly schedule: readonly number[];
  /** How long after it was queued a message is given up. */
  readonly lifetime: number;
  /** After how long a sender is told the message is delayed (once); `undefined`: never. */
  readonly delayNoticeAfter?: number | undefined;
}

/** The default: 5, 10, 20, 40 minutes, then every hour, kept for 5 days. */
export const DEFAULT_RETRY_SCHEDULE: readonly number[] = [300, 600, 1200, 2400, 3600];
export const DEFAULT_LIFETIME = 5 * 24 * 3600;

/** What to do with a message after a failed attempt: try again at `at` (ms since the epoch), or give up. */
export type RetryDecision = { readonly retry: true; readonly at: number } | { readonly retry: false };

/**
 * After attempt number `attempts` (1 for the first) failed at `now`: when to try again, or
 * whether the message outlived the policy's lifetime. The last retry falls on the lifetime's end
 * rather than past it.
 */
export function afterFailure(policy: RetryPolicy, queuedAt: number, attempts: number, now: number): RetryDecision {
  const expires = queuedAt + policy.lifetime * 1000;
  if (now >= expires) return { retry: false };
  const waits = policy.schedule.length === 0 ? [DEFAULT_RETRY_SCHEDULE[0] ?? 300] : policy.schedule;
  const wait = waits[Math.min(Math.max(attempts, 1), waits.length) - 1] ?? 300;
  return { retry: true, at: Math.min(now + wait * 1000, expires) };
}

/** Whether a "delayed" notice is due now for a message queued at `queuedAt` that has none sent yet. */
export function delayNoticeDue(policy: RetryPolicy, queuedAt: number, now: number): boolean {
  return policy.delayNoticeAfter !== undefined && now - queuedAt >= policy.delayNoticeAfter * 1000;
}
