/**
 * What every runnable example does when started directly: listen on 127.0.0.1, say where, and
 * close cleanly on SIGINT or SIGTERM (open transactions finish first).
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { AnyApplication } from '../lib/index.js';

/** Whether the module at `url` is the script node was asked to run. */
export function isMain(url: string): boolean {
  const script = process.argv[1];
  return script !== undefined && url === pathToFileURL(realpathSync(script)).href;
}

/** Serves `app` on 127.0.0.1 (port from `PORT`, else `defaultPort`) until SIGINT or SIGTERM. */
export async function serve(app: AnyApplication, what: string, defaultPort: number): Promise<void> {
  const server = await app.listen(Number(process.env.PORT ?? defaultPort), '127.0.0.1');
  const address = server.address();
  console.log(`${what} on 127.0.0.1:${typeof address === 'object' && address !== null ? address.port : '?'} (Ctrl-C to stop)`);
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** The value of each named environment variable; exits with status 2 naming any that is unset. */
export function requireEnv<const K extends string>(example: string, ...names: K[]): Record<K, string> {
  const missing = names.filter((n) => (process.env[n] ?? '') === '');
  if (missing.length > 0) {
    console.error(`${example}: set ${missing.join(' and ')}`);
    process.exit(2);
  }
  return Object.fromEntries(names.map((n) => [n, process.env[n] ?? ''])) as Record<K, string>;
}
