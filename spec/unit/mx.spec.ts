import fc from 'fast-check';
import { domainToASCII } from 'node:url';
import { describe, expect, it } from 'vitest';
import { asciiDomain, dnsFailure, isNullMx, orderExchanges, routeFromMx } from '../../lib/outbound/mx.js';
import { afterFailure, delayNoticeDue } from '../../lib/outbound/schedule.js';

const record = fc.record({
  exchange: fc.constantFrom('a.test', 'B.test.', 'c.test', 'd.test', 'e.test'),
  priority: fc.integer({ min: 0, max: 65535 }),
});

describe('orderExchanges (RFC 5321 §5.1)', () => {
  it('puts lower preferences first, names each host once, lower-cased without the root dot', () => {
    fc.assert(
      fc.property(fc.array(record, { maxLength: 12 }), (records) => {
        const hosts = orderExchanges(records);
        const best = new Map<string, number>();
        for (const r of records) {
          const host = r.exchange.toLowerCase().replace(/\.$/, '');
          best.set(host, Math.min(best.get(host) ?? Infinity, r.priority));
        }
        expect(new Set(hosts).size).toBe(hosts.length);
        expect(new Set(hosts)).toEqual(new Set(best.keys()));
        const priorities = hosts.map((h) => best.get(h) ?? 0);
        expect(priorities).toEqual([...priorities].sort((x, y) => x - y));
      }),
    );
  });

  it('shuffles equal preferences: each of two equal hosts comes first sometimes', () => {
    const records = [
      { exchange: 'a.test', priority: 10 },
      { exchange: 'b.test', priority: 10 },
      { exchange: 'z.test', priority: 5 },
    ];
    let seed = 1;
    const random = (): number => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const seconds = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const order = orderExchanges(records, random);
      expect(order[0]).toBe('z.test');
      seconds.add(order[1] ?? '');
    }
    expect(seconds).toEqual(new Set(['a.test', 'b.test']));
  });
});

describe('routes', () => {
  it('a null MX is a permanent 5.1.10; a null exchange among others is skipped', () => {
    expect(isNullMx([{ exchange: '', priority: 0 }])).toBe(true);
    expect(isNullMx([{ exchange: '.', priority: 0 }])).toBe(true);
    expect(isNullMx([{ exchange: '', priority: 10 }])).toBe(false);
    expect(routeFromMx('n.test', [{ exchange: '', priority: 0 }])).toEqual({
      kind: 'fail',
      permanent: true,
      status: '5.1.10',
      text: 'n.test does not accept mail (null MX, RFC 7505)',
    });
    expect(
      routeFromMx('m.test', [
        { exchange: '', priority: 0 },
        { exchange: 'mx.m.test', priority: 10 },
      ]),
    ).toEqual({
      kind: 'hosts',
      hosts: ['mx.m.test'],
      implicit: false,
    });
  });

  it('no MX record makes the domain its own exchanger', () => {
    expect(routeFromMx('Plain.Test.', 'none')).toEqual({ kind: 'hosts', hosts: ['plain.test'], implicit: true });
  });

  it('NXDOMAIN is permanent 5.1.2, no data moves on, anything else is temporary', () => {
    expect(dnsFailure('x.test', 'ENOTFOUND')).toMatchObject({ permanent: true, status: '5.1.2' });
    expect(dnsFailure('x.test', 'ENODATA')).toBe('nodata');
    for (const code of ['ESERVFAIL', 'ETIMEOUT', 'ECONNREFUSED', 'EREFUSED', undefined]) {
      expect(dnsFailure('x.test', code)).toMatchObject({ permanent: false, status: '4.4.3' });
    }
  });

  it('looks up internationalised domains by their A-label, and no address literal', () => {
    expect(asciiDomain('Bücher.example', domainToASCII)).toBe('xn--bcher-kva.example');
    expect(asciiDomain('[192.0.2.1]', domainToASCII)).toBeUndefined();
    expect(asciiDomain('bad..name', domainToASCII)).toBeUndefined();
  });
});

describe('retry schedule (RFC 5321 §4.5.4.1)', () => {
  const policy = { schedule: [60, 600], lifetime: 3600 };
  const t0 = 1_000_000;

  it('waits by the schedule, repeating its last step, and never past the lifetime', () => {
    expect(afterFailure(policy, t0, 1, t0)).toEqual({ retry: true, at: t0 + 60_000 });
    expect(afterFailure(policy, t0, 2, t0 + 60_000)).toEqual({ retry: true, at: t0 + 660_000 });
    expect(afterFailure(policy, t0, 7, t0 + 3_300_000)).toEqual({ retry: true, at: t0 + 3_600_000 });
    expect(afterFailure(policy, t0, 8, t0 + 3_600_000)).toEqual({ retry: false });
  });

  it('always retries within the lifetime, never after it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 0, max: 7_200_000 }), (attempts, elapsed) => {
        const decision = afterFailure(policy, t0, attempts, t0 + elapsed);
        if (elapsed >= 3_600_000) {
          expect(decision.retry).toBe(false);
        } else {
          expect(decision.retry).toBe(true);
          const at = decision.retry ? decision.at : 0;
          expect(at).toBeGreaterThan(t0 + elapsed);
          expect(at).toBeLessThanOrEqual(t0 + 3_600_000);
        }
      }),
    );
  });

  it('a delay notice is due once the set time has passed, never without the setting', () => {
    expect(delayNoticeDue({ ...policy, delayNoticeAfter: 600 }, t0, t0 + 599_999)).toBe(false);
    expect(delayNoticeDue({ ...policy, delayNoticeAfter: 600 }, t0, t0 + 600_000)).toBe(true);
    expect(delayNoticeDue(policy, t0, t0 + 10 ** 9)).toBe(false);
  });
});

describe('an MX that points back here (RFC 5321 §5.1)', () => {
  it('is a loop when this host is the best exchanger, or the implicit one', () => {
    const loops = { kind: 'fail', permanent: true, status: '5.4.6', text: 'mail for d.test loops back to myself' };
    expect(routeFromMx('d.test', [{ exchange: 'MX.Me.test.', priority: 10 }], 'mx.me.test')).toEqual(loops);
    expect(
      routeFromMx(
        'd.test',
        [
          { exchange: 'other.test', priority: 10 },
          { exchange: 'mx.me.test', priority: 10 },
        ],
        'mx.me.test',
      ),
    ).toEqual(loops);
    expect(routeFromMx('mx.me.test', 'none', 'mx.me.test')).toEqual({ ...loops, text: 'mail for mx.me.test loops back to myself' });
  });

  it('keeps only the exchangers preferred to this host when it is a backup MX', () => {
    expect(
      routeFromMx(
        'd.test',
        [
          { exchange: 'primary.test', priority: 10 },
          { exchange: 'mx.me.test', priority: 20 },
          { exchange: 'tertiary.test', priority: 30 },
        ],
        'mx.me.test',
      ),
    ).toEqual({ kind: 'hosts', hosts: ['primary.test'], implicit: false });
  });
});
