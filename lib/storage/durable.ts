/**
 * Flushing to disk what a reply promises is there: the queue's files, and the Maildir's. A file's
 * own `fsync` keeps its bytes; a rename or a new name lasts only once its directory is flushed too.
 */
import { open } from 'node:fs/promises';

/** Flushes a directory, so the names made or changed in it survive a crash of the machine. */
export async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
