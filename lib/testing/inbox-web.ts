/**
 * The inbox's web view: its page and assets, read from the package's `web/catcher` folder and
 * served as they are (no bundler at run time, no CDN), and a caught message's HTML under a policy
 * that sandboxes it: no script, an opaque origin, no remote content unless asked.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CaughtMessage } from './caught.js';
import { HttpProblem } from './inbox-requests.js';

/** What the page itself may do: its own scripts, styles, API and frames, nothing from elsewhere. */
export const PAGE_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * What a caught message's HTML may do: nothing but show itself. `sandbox` gives it an opaque
 * origin and no script even when opened on its own (not in the page's iframe); its images are
 * inline (`data:`, which `cid:` parts become) unless the user asked for remote ones.
 */
export function messagePolicy(remoteImages: boolean): string {
  return (
    'sandbox allow-popups allow-popups-to-escape-sandbox; ' +
    `default-src 'none'; style-src 'unsafe-inline'; font-src data:; img-src data:${remoteImages ? ' http: https:' : ''}; ` +
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
  );
}

/** The page's files: path served, file name, type. */
const ASSETS: ReadonlyMap<string, readonly [string, string]> = new Map([
  ['/', ['index.html', 'text/html; charset=utf-8']],
  ['/assets/app.js', ['app.js', 'text/javascript; charset=utf-8']],
  ['/assets/app.css', ['app.css', 'text/css; charset=utf-8']],
  ['/assets/icon.svg', ['icon.svg', 'image/svg+xml']],
]);

/** The `web/catcher` folder of the package this module belongs to, found upwards from here. */
function webFolder(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 5; up++) {
    const candidate = join(dir, 'web', 'catcher');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('InboxHttpServer: the web view is missing from the package (web/catcher)');
}

/** The page and its assets, read once. */
export class WebAssets {
  #folder: string | undefined;
  readonly #cache = new Map<string, Buffer>();

  /** Whether `path` is one of the page's; answers it when it is. */
  serve(method: string, path: string, res: ServerResponse): boolean {
    const asset = ASSETS.get(path);
    if (asset === undefined) return false;
    if (method !== 'GET') {
      res.setHeader('Allow', 'GET');
      throw new HttpProblem(405, `${method} not allowed here`);
    }
    const [file, type] = asset;
    let body = this.#cache.get(file);
    if (body === undefined) {
      this.#folder ??= webFolder();
      body = readFileSync(join(this.#folder, file));
      this.#cache.set(file, body);
    }
    res.writeHead(200, {
      'Content-Type': type,
      'Content-Length': body.length,
      'Content-Security-Policy': PAGE_POLICY,
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
    });
    res.end(body);
    return true;
  }
}

/** `GET /messages/{id}/html[?images=remote]`: the message's HTML under {@link messagePolicy}. */
export function sendHtml(message: CaughtMessage, params: URLSearchParams, res: ServerResponse): void {
  for (const name of params.keys()) if (name !== 'images') throw new HttpProblem(400, `unknown query parameter ${name}`, name);
  const images = params.get('images');
  if (images !== null && images !== 'remote') throw new HttpProblem(400, 'query parameter images must be "remote"', 'images');
  if (message.html === undefined) throw new HttpProblem(404, `message ${message.id} has no HTML body`);
  // A refresh would load a remote page into the frame with nothing asked: the one navigation the
  // policy cannot stop, so it goes.
  const body = Buffer.from(message.html.replace(/<meta\b[^>]*http-equiv\s*=\s*["']?\s*refresh[^>]*>/gi, ''));
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': body.length,
    'Content-Security-Policy': messagePolicy(images === 'remote'),
    'Referrer-Policy': 'no-referrer',
  });
  res.end(body);
}
