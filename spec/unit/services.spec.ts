/** An application's services: made once, closed with the last server that holds them. */
import { describe, expect, it } from 'vitest';
import { serviceKey, Services } from '../../lib/app/services.js';

class Closing {
  closed = 0;
  close(): void {
    this.closed++;
  }
}

describe('Services', () => {
  it('makes a service once per key, and two keys of one name are two services', () => {
    const services = new Services();
    const a = serviceKey<Closing>('pool');
    const b = serviceKey<Closing>('pool');
    let made = 0;
    const make = (): Closing => (made++, new Closing());
    const first = services.get(a, make);
    expect(services.get(a, make)).toBe(first);
    expect(services.get(b, make)).not.toBe(first);
    expect(made).toBe(2);
  });

  it('closes every service when the last holder lets go, and makes a new one after', async () => {
    const services = new Services();
    const key = serviceKey<Closing>('pool');
    const plain = serviceKey<{ list: string[] }>('parsed list');
    services.hold();
    services.hold();
    const pool = services.get(key, () => new Closing());
    services.get(plain, () => ({ list: ['a'] }));
    await services.release();
    expect(pool.closed).toBe(0);
    expect(services.holders).toBe(1);
    await services.release();
    expect(pool.closed).toBe(1);
    expect(services.peek(key)).toBeUndefined();
    expect(services.peek(plain)).toBeUndefined();
    expect(services.get(key, () => new Closing())).not.toBe(pool);
  });

  it('tries every close even when one fails, then throws the failure', async () => {
    const services = new Services();
    const good = services.get(serviceKey<Closing>('good'), () => new Closing());
    services.get(serviceKey<{ close(): Promise<void> }>('bad'), () => ({ close: () => Promise.reject(new Error('disk gone')) }));
    const after = services.get(serviceKey<Closing>('after'), () => new Closing());
    services.hold();
    await expect(services.release()).rejects.toThrow('disk gone');
    expect([good.closed, after.closed]).toEqual([1, 1]);
  });

  it('refuses a release nobody held', async () => {
    await expect(new Services().release()).rejects.toThrow('Services.release(): no server holds these services');
  });
});
