/**
 * The outbound queue on disk. Each message is two files: its content in `data/<id>` (written
 * once) and its state in `queue/<due>.<id>` while it waits, the time of its next attempt in the
 * name (base 36 milliseconds), so finding what is due reads names only. Every write goes to
 * `tmp/`, is flushed, renamed into place, and the directory flushed, so a crash of the process
 * or of the machine never loses what was acknowledged.
 *
 * A process delivers a message only after claiming it: renaming its state into
 * `active/<id>.<pid>.<boot>`. A rename succeeds once, so two processes (the workers of
 * `start(n)`, or two servers sharing the folder) never deliver one message at the same time. A
 * claim whose process is gone (or is this process from an earlier life, as after a container
 * restart that reuses the pid) is put back by {@link Spool.recover}.
 *
 * A state file that cannot be read as a queue entry (broken or empty JSON, recipients that are
 * not a list …) is moved to `quarantine/` when claimed, with a reason the operator sees; it is
 * never delivered, never left claimed, and never stops the listing of the others.
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ID, parseEntry, reasonOf, type ListedMessage, type QueueEntry, type UnreadableEntry } from './queue-entry.js';

export type { ListedMessage, QueuedRecipient, QueueEntry, UnreadableEntry } from './queue-entry.js';
export { parseEntry } from './queue-entry.js';
import { makeFolder, syncDirectory } from '../storage/folders.js';

/** A message this process claimed: deliver it, then {@link Spool.release} or {@link Spool.complete} it. */
export interface Claim {
  /** The message's queue id. */
  readonly id: string;
  /** Its state file in `active/`. */
  readonly path: string;
  /** Its state, changed in place while it is delivered. */
  entry: QueueEntry;
}

/** This process's life, so a claim from an earlier life with the same pid is known as stale. */
const BOOT = randomBytes(6).toString('hex');
const DUE_DIGITS = 9;

function dueName(due: number, id: string): string {
  return `${Math.max(0, Math.floor(due)).toString(36).padStart(DUE_DIGITS, '0')}.${id}`;
}

function parseDueName(name: string): { due: number; id: string } | undefined {
  const dot = name.indexOf('.');
  if (dot !== DUE_DIGITS) return undefined;
  return { due: parseInt(name.slice(0, dot), 36), id: name.slice(dot + 1) };
}

/** A queue id: time-ordered, safe in a file name. */
export function newSpoolId(): string {
  return `${Date.now().toString(36)}${randomBytes(8).toString('hex')}`;
}

function isMissing(err: unknown): boolean {
  return (err as { code?: string }).code === 'ENOENT';
}

/** Whether a process runs with this pid (a process of another user counts). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

export class Spool {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    for (const sub of ['tmp', 'data', 'queue', 'active', 'quarantine']) makeFolder(join(dir, sub));
  }

  /**
   * Whether a message could be queued now: a probe file is written to `tmp/` and removed (a
   * permission check would say yes to root on a read-only or removed folder). The reason when not.
   */
  async notWritable(): Promise<string | undefined> {
    const probe = join(this.dir, 'tmp', `.ready.${process.pid}`);
    try {
      await writeFile(probe, '');
      await unlink(probe);
      return undefined;
    } catch (err) {
      return `queue folder not writable: ${this.dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    }
  }

  /** Told of each state file moved to `quarantine/` (the queue logs it). */
  onQuarantine: (file: string, reason: string) => void = () => undefined;

  /**
   * Queues a message: its content (read from `content` until it ends) and its state with the
   * content's size, each flushed to disk with its directory before this resolves. A failure
   * leaves nothing behind.
   */
  async add(
    fields: Omit<QueueEntry, 'size'>,
    content: AsyncIterable<Uint8Array> | Uint8Array,
    more?: (dataPath: string) => Promise<Partial<Pick<QueueEntry, 'dkim' | 'head'>>>,
  ): Promise<void> {
    let size = 0;
    if (!ID.test(fields.id)) throw new Error(`bad queue id ${fields.id}`);
    const tmpData = join(this.dir, 'tmp', `${fields.id}.data`);
    const data = join(this.dir, 'data', fields.id);
    let file: FileHandle | undefined;
    try {
      file = await open(tmpData, 'wx', 0o600);
      for await (const part of content instanceof Uint8Array ? [content] : content) {
        await file.write(part);
        size += part.length;
      }
      await file.sync();
      await file.close();
      file = undefined;
      await rename(tmpData, data);
      await syncDirectory(join(this.dir, 'data'));
    } catch (err) {
      await file?.close().catch(() => undefined);
      await unlink(tmpData).catch(() => undefined);
      throw err;
    }
    let entry: QueueEntry = { ...fields, size };
    try {
      // What is made from the written content (its DKIM signatures) goes into the state with it.
      if (more !== undefined) entry = { ...entry, ...(await more(data)) };
      await this.#writeState(join(this.dir, 'queue', dueName(entry.nextAttemptAt, entry.id)), entry);
    } catch (err) {
      await unlink(data).catch(() => undefined);
      throw err;
    }
  }

  /** Writes a state file through `tmp/` and flushes its directory. */
  async #writeState(path: string, entry: QueueEntry): Promise<void> {
    const tmp = join(this.dir, 'tmp', `${entry.id}.${process.pid}.${BOOT}.state`);
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.write(JSON.stringify(entry));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
    await syncDirectory(join(path, '..'));
  }

  /** Names in `queue/` due at `now`, soonest first, at most `max`. */
  async due(now: number, max: number): Promise<string[]> {
    const names = await readdir(join(this.dir, 'queue'));
    const due = names.filter((n) => {
      const parsed = parseDueName(n);
      return parsed !== undefined && parsed.due <= now;
    });
    due.sort();
    return due.slice(0, max);
  }

  /** When the soonest waiting message is due, or `undefined` when none waits. */
  async nextDue(): Promise<number | undefined> {
    const names = (await readdir(join(this.dir, 'queue'))).filter((n) => parseDueName(n) !== undefined).sort();
    return names[0] === undefined ? undefined : parseDueName(names[0])?.due;
  }

  /** Claims a waiting message by its name in `queue/`; `undefined` when another process was first. */
  async claim(name: string): Promise<Claim | undefined> {
    const parsed = parseDueName(name);
    if (parsed === undefined) return undefined;
    const path = join(this.dir, 'active', `${parsed.id}.${process.pid}.${BOOT}`);
    try {
      await rename(join(this.dir, 'queue', name), path);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    const entry = parseEntry(await readFile(path, 'utf8'));
    if (typeof entry === 'string') {
      await rename(path, join(this.dir, 'quarantine', name));
      await syncDirectory(join(this.dir, 'quarantine'));
      this.onQuarantine(`quarantine/${name}`, entry);
      return undefined;
    }
    return { id: parsed.id, path, entry };
  }

  /** Stores a claimed message's state as it stands (after some recipients were served). */
  async update(claim: Claim): Promise<void> {
    await this.#writeState(claim.path, claim.entry);
  }

  /** Stores the state and puts the message back to wait until `entry.nextAttemptAt`. */
  async release(claim: Claim): Promise<void> {
    await this.#writeState(claim.path, claim.entry);
    await rename(claim.path, join(this.dir, 'queue', dueName(claim.entry.nextAttemptAt, claim.id)));
    await syncDirectory(join(this.dir, 'queue'));
  }

  /** Forgets a message that needs nothing more: its state, then its content. */
  async complete(claim: Claim): Promise<void> {
    await unlink(claim.path);
    await syncDirectory(join(this.dir, 'active'));
    await unlink(join(this.dir, 'data', claim.id)).catch(() => undefined);
  }

  /** The path of a message's content. */
  dataPath(id: string): string {
    return join(this.dir, 'data', id);
  }

  /**
   * Puts back claims whose process is gone, to be tried at once, and drops content older than an
   * hour that no state names (left by a crash between the two writes of {@link add}).
   * Resolves to how many claims it put back.
   */
  async recover(): Promise<number> {
    let recovered = 0;
    const known = new Set<string>();
    for (const name of await readdir(join(this.dir, 'active'))) {
      const [id, pidText, boot] = name.split('.');
      if (id === undefined) continue;
      known.add(id);
      const pid = Number(pidText);
      const mine = pid === process.pid && boot === BOOT;
      const stale = pid === process.pid ? boot !== BOOT : !alive(pid);
      if (mine || !stale) continue;
      try {
        await rename(join(this.dir, 'active', name), join(this.dir, 'queue', dueName(0, id)));
        recovered++;
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    if (recovered > 0) await syncDirectory(join(this.dir, 'queue'));
    for (const name of await readdir(join(this.dir, 'queue'))) {
      const parsed = parseDueName(name);
      if (parsed !== undefined) known.add(parsed.id);
    }
    const hourAgo = Date.now() - 3600_000;
    for (const id of await readdir(join(this.dir, 'data'))) {
      if (known.has(id)) continue;
      const info = await stat(join(this.dir, 'data', id)).catch(() => undefined);
      if (info !== undefined && info.mtimeMs < hourAgo) await unlink(join(this.dir, 'data', id)).catch(() => undefined);
    }
    return recovered;
  }

  /** Every queued message, waiting or being delivered, for an operator; state files that cannot be read are left out (see {@link unreadable}). */
  async list(): Promise<ListedMessage[]> {
    return (await this.#scan()).messages;
  }

  /** The state files that cannot be read as queue entries: waiting, claimed, or already quarantined. */
  async unreadable(): Promise<UnreadableEntry[]> {
    return (await this.#scan()).unreadable;
  }

  async #scan(): Promise<{ messages: ListedMessage[]; unreadable: UnreadableEntry[] }> {
    const messages: ListedMessage[] = [];
    const unreadable: UnreadableEntry[] = [];
    for (const [sub, active] of [
      ['queue', false],
      ['active', true],
      ['quarantine', false],
    ] as const) {
      for (const name of await readdir(join(this.dir, sub)).catch(() => [] as string[])) {
        let text: string;
        try {
          text = await readFile(join(this.dir, sub, name), 'utf8');
        } catch (err) {
          if (isMissing(err)) continue;
          throw err;
        }
        const entry = sub === 'quarantine' ? 'quarantined' : parseEntry(text);
        if (typeof entry === 'string') unreadable.push({ file: `${sub}/${name}`, reason: sub === 'quarantine' ? reasonOf(text) : entry });
        else messages.push({ entry, active });
      }
    }
    messages.sort((a, b) => a.entry.queuedAt - b.entry.queuedAt);
    return { messages, unreadable };
  }

  /** Where a waiting message's state is, by id; `active` when a process is delivering it now. */
  async locate(id: string): Promise<{ name: string; active: boolean } | undefined> {
    const waiting = (await readdir(join(this.dir, 'queue'))).find((n) => parseDueName(n)?.id === id);
    if (waiting !== undefined) return { name: waiting, active: false };
    const active = (await readdir(join(this.dir, 'active'))).find((n) => n.split('.')[0] === id);
    return active === undefined ? undefined : { name: active, active: true };
  }

  /** Makes a waiting message due now. False when it is not waiting (being delivered, or gone). */
  async retryNow(id: string): Promise<boolean> {
    const found = await this.locate(id);
    if (found === undefined || found.active) return false;
    try {
      await rename(join(this.dir, 'queue', found.name), join(this.dir, 'queue', dueName(0, id)));
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
    return true;
  }

  /**
   * Deletes a waiting message without delivering or bouncing it. False when it is not waiting:
   * it is taken first (claimed), so a process about to deliver it cannot.
   */
  async remove(id: string): Promise<boolean> {
    const found = await this.locate(id);
    if (found === undefined || found.active) return false;
    const claim = await this.claim(found.name);
    if (claim === undefined) return false;
    await this.complete(claim);
    return true;
  }
}
