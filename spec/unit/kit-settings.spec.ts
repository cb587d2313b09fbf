/**
 * One schema for both protocols: the connection kit's settings (who the server is, TLS, I/O, the
 * per-client limits) are checked the same way, in the same words, for SMTP and for POP3.
 */
import { describe, expect, it } from 'vitest';
import { Application, ConnectionKitSettings, RequestHandler, SettingsError, type SettingsProblem } from '../../lib/index.js';
import { Pop3Server, type Pop3Store } from '../../lib/entry/pop3.js';

const store = { open: () => Promise.reject(new Error('not used')) } as unknown as Pop3Store;
const authenticate = (): boolean => false;

function problems(make: () => unknown): SettingsProblem[] {
  try {
    make();
  } catch (err) {
    if (err instanceof SettingsError) return [...err.problems];
    throw err;
  }
  throw new Error('no SettingsError');
}

describe('the connection kit’s settings', () => {
  it('a bad shared setting is refused by SMTP and POP3 in the same words', () => {
    const bad = {
      hostname: 'has space',
      maxConnectionsPerIp: -1,
      ipv6PrefixLength: 200,
      limitExempt: ['10.0.0.0/33'],
      logger: {} as never,
      tls: { key: 'k' },
      implicitTLS: true,
    };
    const smtp = problems(() => new Application(RequestHandler, bad));
    const pop3 = problems(() => new Pop3Server({ store, authenticate, ...bad }));
    expect(pop3).toEqual(smtp);
    expect(smtp.map((p) => `${p.field}: ${p.reasons.join(', ')}`)).toEqual([
      'hostname: hostname must not contain white space',
      'maxConnectionsPerIp: maxConnectionsPerIp must not be less than 0',
      'ipv6PrefixLength: ipv6PrefixLength must not be greater than 128',
      'logger: logger must be a pino logger',
      'tls: tls needs key and cert (or pfx)',
      'limitExempt: 10.0.0.0/33 has a bad prefix length',
    ]);
  });

  it('POP3 keeps its own defaults and stricter bounds on the shared names', () => {
    expect(problems(() => new Pop3Server({ store, authenticate, idleTimeout: 999, maxLineLength: 63 }))).toEqual([
      { field: 'idleTimeout', reasons: ['idleTimeout must not be less than 1000'] },
      { field: 'maxLineLength', reasons: ['maxLineLength must not be less than 64'] },
    ]);
    // SMTP takes an idle timeout POP3 refuses: its bound is the kit's.
    expect(new Application(RequestHandler, { idleTimeout: 999 }).settings.idleTimeout).toBe(999);
    expect(new ConnectionKitSettings().maxConnectionsPerIp).toBe(20);
  });
});
