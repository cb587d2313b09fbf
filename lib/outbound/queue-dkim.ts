/**
 * DKIM in the outbound queue: a message is signed when it is queued, from its written content,
 * and the signatures (and a verdict of mail authentication) kept in its entry go out on top of the
 * unchanged content at each attempt.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { fromDomain, type DkimSigner } from '../auth/sign.js';
import type { QueueEntry } from './spool.js';

/** The DKIM-Signature fields for the queued content at `path`, read from it (its head first, for the From: domain). */
export async function signed(signer: DkimSigner, path: string): Promise<Partial<Pick<QueueEntry, 'dkim'>>> {
  const file = await open(path, 'r');
  let head: string;
  try {
    const start = Buffer.alloc(64 * 1024);
    const { bytesRead } = await file.read(start, 0, start.length, 0);
    const text = start.toString('latin1', 0, bytesRead);
    const end = text.indexOf('\r\n\r\n');
    head = end === -1 ? text : text.slice(0, end);
  } finally {
    await file.close();
  }
  const dkim = await signer.signatures(() => createReadStream(path), fromDomain(head));
  return dkim === '' ? {} : { dkim };
}

/** The content as it goes out: the fields made when it was queued (a verdict, signatures), then its bytes. */
export function withPrepended(fields: string, content: Readable): Readable {
  if (fields === '') return content;
  async function* joined(): AsyncGenerator<Buffer> {
    yield Buffer.from(fields);
    for await (const part of content) yield part as Buffer;
  }
  return Readable.from(joined());
}
