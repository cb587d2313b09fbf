/**
 * Folders made safely, and flushing to disk what a reply promises is there: the queue's files, and the Maildir's. A file's
 * own `fsync` keeps its bytes; a rename or a new name lasts only once its directory is flushed too.
 */
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Flushes a directory, so the names made or changed in it survive a crash of the machine. */
export async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * Makes a folder and the folders above it that are missing (mode 0700), one level at a time.
 * Node 20's own `recursive` mkdir never returns for some paths (under /proc, it spins); this
 * walks at most as many levels as the path has, and throws the first real error (ENOENT, EACCES,
 * ENOTDIR) naming the path.
 */
export function makeFolder(path: string): void {
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (!statSync(path).isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), { code: 'ENOTDIR' });
      return;
    }
    const parent = dirname(path);
    if (code !== 'ENOENT' || parent === path) throw err;
    makeFolder(parent);
    mkdirSync(path, { mode: 0o700 });
  }
}

/** Makes `path` if missing and checks that this process can write there; throws the reason otherwise. */
export function writableFolder(path: string): void {
  makeFolder(path);
  accessSync(path, constants.W_OK | constants.X_OK);
}

/** Throws why this process could not make (or write in) `path`; makes nothing (a configuration check). */
export function couldMakeFolder(path: string): void {
  let existing = path;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  if (!statSync(existing).isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory: '${existing}'`), { code: 'ENOTDIR' });
  accessSync(existing, constants.W_OK | constants.X_OK);
}
