// The second step of `npm run build`, after tsc: the package's entry points (its exports and its
// command) bundled from tsc's JavaScript into a few files, with the code they share in chunks
// (so a class is one class whichever entry point it came through). Each ES module Node loads
// keeps a module record, its loader's bookkeeping and its pages: importing the server from some
// ninety files cost about 3 MiB more resident memory than from a handful, and made the young
// generation grow during start-up. tsc's declarations stay as they are, one per source file;
// packages stay outside the bundle, loaded from node_modules as before.
import { build } from 'esbuild';
import { readdirSync, rmSync, cpSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = 'dist/lib';
const STAGING = 'dist/bundle';
const ENTRIES = ['index.js', 'entry/outbound.js', 'entry/testing.js', 'entry/pop3.js', 'cli/main.js'];

rmSync(STAGING, { recursive: true, force: true });
await build({
  entryPoints: ENTRIES.map((entry) => join(ROOT, entry)),
  outbase: ROOT,
  outdir: STAGING,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: 'chunks/[name]-[hash]',
  legalComments: 'none',
  logLevel: 'warning',
});

/** Removes tsc's JavaScript under `dir`, keeping the declarations. */
function dropJavaScript(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) dropJavaScript(path);
    else if (entry.name.endsWith('.js')) rmSync(path);
  }
}

dropJavaScript(ROOT);
cpSync(STAGING, ROOT, { recursive: true });
rmSync(STAGING, { recursive: true, force: true });
