/**
 * Debian's chromium, headless, driven through Playwright: the browser the catcher's web view is
 * tested in. Where it is missing or cannot start, `launch` says why, and the tests skip with it.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = [process.env.SIROCCO_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** A started browser, or the reason there is none. */
export async function launch(): Promise<{ browser: Browser } | { reason: string }> {
  const path = CANDIDATES.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
  if (path === undefined) return { reason: 'no chromium at /usr/bin/chromium (Debian: apt-get install chromium)' };
  try {
    // As root (CI) chromium's own sandbox cannot start; the pages it loads come from the test alone.
    const browser = await chromium.launch({ executablePath: path, args: ['--no-sandbox'], timeout: 30_000 });
    return { browser };
  } catch (err) {
    return { reason: `${path} did not start: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` };
  }
}
