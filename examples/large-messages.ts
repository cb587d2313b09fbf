/**
 * Large messages straight to disk: a streaming handler writes each message to a spool folder while
 * it arrives, with a SHA-256 of it, so a 1 GiB attachment costs the server no more memory than a
 * small one. A message that is cut short (the client went away, or it passed the size limit)
 * leaves no file behind.
 *
 *   SPOOL=./spool PORT=2525 npx tsx examples/large-messages.ts
 */
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Application, RequestHandler } from '../lib/index.js';
import { isMain, serve } from './serve.js';

export class SpoolToDisk extends RequestHandler<{ spool: string }> {
  /** Read the message while it arrives: `this.request.stream` instead of `this.request.body`. */
  static override streaming = true;

  override async data(): Promise<void> {
    const spool = this.settings.spool;
    mkdirSync(spool, { recursive: true });
    const partial = join(spool, `${this.request.id}.partial`);
    const hash = createHash('sha256');
    const hashing = new Transform({
      transform(part: Buffer, _encoding, done): void {
        hash.update(part);
        done(null, part);
      },
    });
    try {
      await pipeline(this.request.stream, hashing, createWriteStream(partial, { flags: 'wx' }));
    } catch (err) {
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
