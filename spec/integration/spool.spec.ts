/** The queue's files: claims are taken once, a dead process's claims come back, failed writes leave nothing. */
import { spawnSync } from 'node:child_process';
import { readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newSpoolId, Spool, type QueueEntry } from '../../lib/outbound/spool.js';
import { tempQueue } from '../helpers/outbound.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function folder(): string {
  const q = tempQueue();
  cleanups.push(q.cleanup);
  return q.dir;
}

function entry(due = 0): QueueEntry {
  return {
    id: newSpoolId(),
    from: 'a@b.test',
    recipients: [{ address: 'c@d.test', state: 'pending' }],
    requireTls: false,
    eightBit: false,
    size: 3,
    queuedAt: Date.now(),
    attempts: 0,
    nextAttemptAt: due,
  };
}

describe('Spool', () => {
  it('gives each waiting message to one claimer only, however many try at once', async () => {
    const dir = folder();
    const spools = [new Spool(dir), new Spool(dir), new Spool(dir)];
    for (let i = 0; i < 20; i++) await spools[0]?.add(entry(), Buffer.from('x\r\n'));
    const names = await spools[0]!.due(Date.now(), 100);
    expect(names).toHaveLength(20);
    const claims = await Promise.all(spools.flatMap((s) => names.map((n) => s.claim(n))));
    const won = claims.filter((c) => c !== undefined).map((c) => c.id);
    expect(won).toHaveLength(20);
    expect(new Set(won).size).toBe(20);
    expect(readdirSync(join(dir, 'queue'))).toEqual([]);
  });

  it('lists only what is due, soonest first', async () => {
    const spool = new Spool(folder());
    const later = entry(Date.now() + 3_600_000);
    const soon = entry(1000);
    const sooner = entry(10);
    for (const e of [later, soon, sooner]) await spool.add(e, Buffer.from('x'));
    const due = await spool.due(Date.now(), 10);
    expect(due.map((n) => n.slice(n.indexOf('.') + 1))).toEqual([sooner.id, soon.id]);
    expect(await spool.nextDue()).toBe(10);
  });

  it("puts back the claims of a process that is gone, and of this pid's earlier life, never its own", async () => {
    const dir = folder();
    const spool = new Spool(dir);
    const mine = entry();
    const dead = entry();
    const reborn = entry();
    for (const e of [mine, dead, reborn]) await spool.add(e, Buffer.from('x'));
    const claims = await Promise.all((await spool.due(Date.now(), 10)).map((n) => spool.claim(n)));
    // A process that has exited: its pid is free (pids are not reused that fast).
    const gone = spawnSync(process.execPath, ['-e', 'process.pid']).pid ?? 0;
    const claimOf = (id: string) => claims.find((c) => c?.id === id)!;
    renameSync(claimOf(dead.id).path, join(dir, 'active', `${dead.id}.${gone}.aaaaaaaaaaaa`));
    renameSync(claimOf(reborn.id).path, join(dir, 'active', `${reborn.id}.${process.pid}.bbbbbbbbbbbb`));
    expect(await spool.recover()).toBe(2);
    const waiting = readdirSync(join(dir, 'queue')).map((n) => n.slice(n.indexOf('.') + 1));
    expect(waiting.sort()).toEqual([dead.id, reborn.id].sort());
    expect(readdirSync(join(dir, 'active'))).toEqual([claimOf(mine.id).path.split('/').pop()]);
  });

  it('leaves nothing behind when the content fails half way', async () => {
    const dir = folder();
    const spool = new Spool(dir);
    async function* broken(): AsyncIterable<Uint8Array> {
      yield await Promise.resolve(Buffer.from('Subject: x\r\n'));
      throw new Error('client went away');
    }
    await expect(spool.add(entry(), broken())).rejects.toThrow('client went away');
    for (const sub of ['tmp', 'data', 'queue', 'active']) expect(readdirSync(join(dir, sub))).toEqual([]);
  });

  it('drops content that no state names once it is an hour old', async () => {
    const dir = folder();
    const spool = new Spool(dir);
    const orphan = join(dir, 'data', newSpoolId());
    writeFileSync(orphan, 'x');
    const { utimesSync } = await import('node:fs');
    utimesSync(orphan, new Date(Date.now() - 7200_000), new Date(Date.now() - 7200_000));
    const fresh = join(dir, 'data', newSpoolId());
    writeFileSync(fresh, 'x');
    await spool.recover();
    expect(readdirSync(join(dir, 'data'))).toEqual([fresh.split('/').pop()]);
  });
});

describe('Spool with state files that cannot be read', () => {
  const BAD: readonly [string, string, string][] = [
    ['broken JSON', '{"id": ', 'not JSON'],
    ['an empty file', '', 'the file is empty'],
    ['recipients that are not a list', 'RECIPIENTS', 'recipients is not a list'],
  ];

  /** A queue with one good message and one waiting state file of each bad kind. */
  async function queueWithBadFiles(dir: string): Promise<{ spool: Spool; good: QueueEntry }> {
    const spool = new Spool(dir);
    const good = entry();
    await spool.add(good, Buffer.from('x'));
    for (const [, text] of BAD) {
      const id = newSpoolId();
      const body = text === 'RECIPIENTS' ? JSON.stringify({ ...entry(), id, recipients: 'c@d.test' }) : text;
      writeFileSync(join(dir, 'queue', `000000000.${id}`), body);
    }
    return { spool, good };
  }

  it('moves each to quarantine/ when it comes due, instead of leaving it claimed for ever', async () => {
    const dir = folder();
    const { spool, good } = await queueWithBadFiles(dir);
    const told: string[] = [];
    spool.onQuarantine = (file, reason) => told.push(`${file}: ${reason}`);
    const claimed = [];
    for (const name of await spool.due(Date.now(), 10)) claimed.push(await spool.claim(name));
    expect(claimed.filter((c) => c !== undefined).map((c) => c?.id)).toEqual([good.id]);
    expect(readdirSync(join(dir, 'active'))).toHaveLength(1);
    expect(readdirSync(join(dir, 'quarantine'))).toHaveLength(3);
    const said = told.map((t) => t.replace(/: not JSON: .*/, ': not JSON'));
    expect(said).toHaveLength(3);
    for (const [, , reason] of BAD)
      expect(said.some((t) => new RegExp(`^quarantine/000000000\\.[a-z0-9]+: ${reason}$`).test(t))).toBe(true);
  });

  it('lists every readable message, and names the others, with sirocco queue list exiting 1', async () => {
    const dir = folder();
    const { good } = await queueWithBadFiles(dir);
    const { queueCommand } = await import('../../lib/cli/queue-command.js');
    let out = '';
    let err = '';
    const status = await queueCommand(
      ['list', dir],
      (t) => (out += t),
      (t) => (err += t),
    );
    expect(status).toBe(1);
    expect(out).toContain(`${good.id}  due now  attempts 0`);
    expect(out).toContain('1 message in the queue\n');
    const lines = err.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    for (const [, , reason] of BAD)
      expect(lines.some((l) => new RegExp(`^queue/000000000\\.[a-z0-9]+: cannot be read: ${reason}`).test(l))).toBe(true);
  });

  it('sirocco queue show says the content is missing instead of crashing', async () => {
    const dir = folder();
    const spool = new Spool(dir);
    const good = entry();
    await spool.add(good, Buffer.from('x'));
    rmSync(join(dir, 'data', good.id));
    const { queueCommand } = await import('../../lib/cli/queue-command.js');
    let out = '';
    const status = await queueCommand(
      ['show', dir, good.id],
      (t) => (out += t),
      () => undefined,
    );
    expect(status).toBe(0);
    expect(out).toMatch(/\(the content cannot be read: ENOENT/);
  });
});
