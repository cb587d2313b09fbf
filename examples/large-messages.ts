/**
 * Large messages straight to disk: a streaming handler writes each message to a spool folder while
 * it arrives, with a SHA-256 of it, so a 1 GiB attachment costs the server no more memory than a
 * small one. It reads lent chunks: each is hashed and written before the next is asked for, so
 * the server reads the message through the same few buffers. A message that is cut short (the
 * client went away, or it passed the size limit) leaves no file behind.
 *
 *   SPOOL=./spool PORT=2525 npx tsx examples/large-messages.ts
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Application, RequestHandler } from '../lib/index.js';
import { isMain, serve } from './serve.js';

export class SpoolToDisk extends RequestHandler<{ spool: string }> {
  /** Read the message while it arrives, instead of `this.request.body`. */
  static override streaming = true;

  override async data(): Promise<void> {
    const spool = this.settings.spool;
    mkdirSync(spool, { recursive: true });
    const partial = join(spool, `${this.request.id}.partial`);
    const hash = createHash('sha256');
    let file: FileHandle | undefined;
    try {
      file = await open(partial, 'wx');
      // Each chunk is lent until the loop asks for the next: used, not kept.
      for await (const chunk of this.request.lentChunks()) {
        hash.update(chunk);
        await file.write(chunk);
      }
      await file.close();
    } catch (err) {
      await file?.close().catch(() => undefined);
      await unlink(partial).catch(() => undefined);
      throw err;
    }
    const digest = hash.digest('hex');
    await rename(partial, join(spool, `${this.request.id}.eml`));
    this.finish(`Ok: stored as ${this.request.id}, sha256 ${digest}`);
  }
}

export function createSpoolServer(spool: string): Application<{ spool: string }> {
  return new Application(SpoolToDisk, { hostname: 'localhost', spool: resolve(spool), maxMessageSize: 1024 * 1024 * 1024 });
}

if (isMain(import.meta.url)) {
  const spool = resolve(process.env.SPOOL ?? './spool');
  await serve(createSpoolServer(spool), `spooling large messages to ${spool}; listening`, 2525);
}
