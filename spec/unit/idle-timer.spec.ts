import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IdleTimer } from '../../lib/net/idle-timer.js';

describe('IdleTimer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires no earlier than the timeout after the last activity, and at most an eighth later', () => {
    const expired: number[] = [];
    const timer = new IdleTimer(800, { waitingOnServer: () => false, idleExpired: () => expired.push(Date.now()) });
    const start = Date.now();
    vi.advanceTimersByTime(350);
    timer.touch();
    const last = Date.now();
    vi.advanceTimersByTime(799);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(101);
    expect(expired).toHaveLength(1);
    const after = (expired[0] ?? 0) - last;
    expect(after).toBeGreaterThanOrEqual(800);
    expect(after).toBeLessThanOrEqual(900);
    expect(last - start).toBe(350);
    // It fires once.
    vi.advanceTimersByTime(5000);
    expect(expired).toHaveLength(1);
  });

  it('never counts time the connection is busy', () => {
    let busy = true;
    let expired = false;
    const timer = new IdleTimer(100, { waitingOnServer: () => busy, idleExpired: () => (expired = true) });
    vi.advanceTimersByTime(1000);
    expect(expired).toBe(false);
    // The connection touches the timer when it replies, which is when being busy ends.
    busy = false;
    timer.touch();
    vi.advanceTimersByTime(99);
    expect(expired).toBe(false);
    vi.advanceTimersByTime(30);
    expect(expired).toBe(true);
  });

  it('stays quiet once stopped, and works with a 1 ms timeout', () => {
    let expired = 0;
    const timer = new IdleTimer(1, { waitingOnServer: () => false, idleExpired: () => expired++ });
    timer.stop();
    vi.advanceTimersByTime(100);
    expect(expired).toBe(0);
    new IdleTimer(1, { waitingOnServer: () => false, idleExpired: () => expired++ });
    vi.advanceTimersByTime(2);
    expect(expired).toBe(1);
  });

  it('shares one interval among every timer of the same timeout, and stops it when the last one stops', () => {
    const before = vi.getTimerCount();
    let expired = 0;
    const timers = Array.from({ length: 100 }, () => new IdleTimer(800, { waitingOnServer: () => false, idleExpired: () => expired++ }));
    const other = new IdleTimer(100, { waitingOnServer: () => false, idleExpired: () => expired++ });
    expect(vi.getTimerCount() - before).toBe(2);
    other.stop();
    for (const timer of timers.slice(1)) timer.stop();
    expect(vi.getTimerCount() - before).toBe(1);
    vi.advanceTimersByTime(1000);
    expect(expired).toBe(1);
    expect(vi.getTimerCount() - before).toBe(0);
  });

  it('never expires a timer that joined just before a check earlier than its timeout', () => {
    const expired: number[] = [];
    new IdleTimer(800, { waitingOnServer: () => false, idleExpired: () => undefined });
    vi.advanceTimersByTime(99);
    const joined = Date.now();
    new IdleTimer(800, { waitingOnServer: () => false, idleExpired: () => expired.push(Date.now()) });
    vi.advanceTimersByTime(2000);
    expect((expired[0] ?? 0) - joined).toBeGreaterThanOrEqual(800);
  });
});
