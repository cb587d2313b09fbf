/**
 * The files of a Maildir (the layout of the Maildir specification, as the `Maildir` handler
 * writes it and the POP3 store reads it): unique names, and the `tmp/`, `new/` and `cur/` folders.
 */
import { accessSync, constants } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { makeFolder } from './folders.js';

let delivered = 0;
// The Maildir spec asks for a host name without "/" or ":" in unique names.
const HOST = osHostname().replace(/\//g, '\\057').replace(/:/g, '\\072');

/** A unique file name as the Maildir spec describes: time, then microseconds, pid and a counter, then host. */
export function maildirName(now: number): string {
  const seconds = Math.floor(now / 1000);
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000) % 1_000_000;
  return `${seconds}.M${micros}P${process.pid}Q${++delivered}.${HOST}`;
}

const prepared = new Set<string>();

/** Makes `tmp/`, `new/` and `cur/` under `path` (mode 0700), once per path; throws when it cannot, or cannot write there. */
export function prepareMaildir(path: string): void {
  if (prepared.has(path)) return;
  for (const sub of ['tmp', 'new', 'cur']) makeFolder(join(path, sub));
  accessSync(join(path, 'tmp'), constants.W_OK);
  prepared.add(path);
}
