import { describe, expect, it } from 'vitest';
import { MemoryLimitStore } from '../../lib/app/limit-store.js';
import { network } from '../../lib/net/client-limits.js';

describe('MemoryLimitStore', () => {
  it('counts open connections and events in a sliding window', () => {
    let now = 1_000_000;
    const store = new MemoryLimitStore(() => now);
    expect([store.acquire('ip:a'), store.acquire('ip:a')]).toEqual([1, 2]);
    store.release('ip:a');
    expect(store.acquire('ip:a')).toBe(2);
    expect([store.hit('r', 1000), store.hit('r', 1000)]).toEqual([1, 2]);
    now += 600;
    expect(store.hit('r', 1000)).toBe(3);
    now += 500;
    expect(store.count('r', 1000)).toBe(1);
    now += 1000;
    expect(store.count('r', 1000)).toBe(0);
  });
});

describe('network', () => {
  it('is the /24 of an IPv4 address and the /64 of an IPv6 one', () => {
    expect(network('192.0.2.77')).toBe('192.0.2.0/24');
    expect(network('::ffff:192.0.2.77')).toBe('192.0.2.0/24');
    expect(network('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(network('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(network('::1')).toBe('0:0:0:0::/64');
  });
});
