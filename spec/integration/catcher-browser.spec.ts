/**
 * The catcher's web view in a real browser (Debian's chromium, headless): mail appears without a
 * reload, opens in its tabs, downloads, searches, deletes and releases; the keyboard alone works;
 * and a hostile message runs no script and loads nothing remote until asked.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RequestHandler } from '../../lib/index.js';
import { Controller, type CaughtMessage } from '../../lib/entry/testing.js';
import { launch } from '../helpers/browser.js';
import { plainTransport } from '../helpers/mailer.js';
import { until } from '../helpers/server.js';

const started = await launch();
const reason = 'reason' in started ? started.reason : undefined;
if (reason !== undefined) console.log(`catcher-browser.spec: skipped: ${reason}`);
const browser: Browser | undefined = 'browser' in started ? started.browser : undefined;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await browser?.close();
});

/** A catcher (SMTP and the web view) and a page open on it. */
async function open(
  options: { releaseTo?: { host: string; port: number } } = {},
): Promise<{ controller: Controller; page: Page; base: string }> {
  const controller = new Controller(RequestHandler, { inbox: true });
  await controller.start();
  cleanups.push(() => controller.stop());
  // Closed by the controller's stop.
  const http = await controller.serveInbox(options.releaseTo === undefined ? {} : { releaseTo: options.releaseTo });
  const context = await (browser as Browser).newContext({ acceptDownloads: true });
  cleanups.push(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const base = `http://127.0.0.1:${http.address().port}`;
  await page.goto(`${base}/`);
  await page.locator('#live.on').waitFor();
  return { controller, page, base };
}

async function send(port: number, mail: Record<string, unknown>): Promise<void> {
  const transport = plainTransport(port);
  try {
    await transport.sendMail({ from: 'shop@example.com', to: 'bob@example.com', ...mail });
  } finally {
    transport.close();
  }
}

/** A loopback HTTP server that records every path asked of it: what a hostile message would reach. */
async function beacon(): Promise<{ port: number; hits: string[] }> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    res.writeHead(200, { 'Content-Type': 'image/gif' }).end(Buffer.from('R0lGODlhAQABAAAAACw=', 'base64'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as AddressInfo).port, hits };
}

/** Playwright's own assertions come with its test runner; here vitest polls what the page shows. */
const poll = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: 10_000, interval: 50 });
const text = (locator: Locator) => () => locator.textContent();
const texts = (locator: Locator) => () => locator.allTextContents();
/** The page's DOM as far as the focus check reads it (the test compiles without the DOM's types). */
type Focusable = { readonly ownerDocument: { readonly activeElement: unknown } };
const focused = (locator: Locator) => () => locator.evaluate((node: Focusable) => node === node.ownerDocument.activeElement);

describe.skipIf(reason !== undefined)('the catcher in chromium', () => {
  it('shows mail as it arrives, without a reload, and opens it in every view', async () => {
    const { controller, page } = await open();
    await page.locator('#empty').waitFor();
    await send(controller.port, {
      subject: 'Your invoice',
      text: 'Total: 10 EUR',
      html: '<h1>Invoice</h1><p>Total: <b>10 EUR</b></p>',
      attachments: [{ filename: 'invoice.txt', content: 'total: 10\n' }],
    });
    const item = page.locator('.item', { hasText: 'Your invoice' });
    await item.waitFor();
    await poll(text(page.locator('#count'))).toBe('1 message');
    await poll(text(item.locator('.to'))).toBe('To: bob@example.com · 1 attachment');
    await item.click();
    await poll(text(page.locator('#m-subject'))).toBe('Your invoice');
    await poll(text(page.frameLocator('#html').locator('h1'))).toBe('Invoice');
    await page.getByRole('tab', { name: 'Text' }).click();
    await poll(text(page.locator('#text'))).toBe('Total: 10 EUR');
    await page.getByRole('tab', { name: 'Source' }).click();
    await poll(text(page.locator('#source'))).toContain('Subject: Your invoice');
    await page.getByRole('tab', { name: 'Headers' }).click();
    await poll(text(page.locator('#headers tr', { hasText: 'Subject' }))).toMatch(/SubjectYour invoice/);
    await page.getByRole('tab', { name: 'Attachments (1)' }).click();
    const download = page.waitForEvent('download');
    await page.getByRole('link', { name: 'invoice.txt' }).click();
    const file = await download;
    expect(file.suggestedFilename()).toBe('invoice.txt');
    const stream = await file.createReadStream();
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('total: 10\n');
  });

  it('searches, deletes one and all, and follows deletions made elsewhere', async () => {
    const { controller, page, base } = await open();
    for (const subject of ['Welcome, Ann', 'Password reset', 'Welcome, Bo']) await send(controller.port, { subject, text: subject });
    await poll(() => page.locator('.item').count()).toBe(3);
    await page.getByLabel('Search messages').fill('welcome');
    await poll(text(page.locator('#count'))).toBe('2 found');
    await poll(texts(page.locator('.item .subject'))).toEqual(['Welcome, Bo', 'Welcome, Ann']);
    await page.getByLabel('Search messages').fill('');
    await poll(() => page.locator('.item').count()).toBe(3);
    await page.locator('.item', { hasText: 'Password reset' }).click();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await poll(() => page.locator('.item').count()).toBe(2);
    expect(controller.inbox.messages.map((m) => m.subject)).toEqual(['Welcome, Ann', 'Welcome, Bo']);
    // Deleted through the API: the open page follows.
    const [ann] = controller.inbox.messages as [CaughtMessage];
    expect((await fetch(`${base}/api/v1/messages/${ann.id}`, { method: 'DELETE' })).status).toBe(204);
    await poll(texts(page.locator('.item .subject'))).toEqual(['Welcome, Bo']);
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Delete all' }).click();
    await page.locator('#empty').waitFor();
    expect(controller.inbox.messages).toEqual([]);
  });

  it('releases a message to a second Sirocco, and shows why when the release fails', async () => {
    const { controller, page } = await open();
    const next = new Controller(RequestHandler, { inbox: true });
    await next.start();
    cleanups.push(() => next.stop());
    await send(controller.port, { subject: 'Release me', text: 'hello' });
    await page.locator('.item', { hasText: 'Release me' }).click();
    await page.getByRole('button', { name: 'Release…' }).click();
    await poll(() => page.getByLabel('To').inputValue()).toBe('bob@example.com');
    await page.getByLabel('To').fill('carol@example.com');
    await page.getByLabel('Host').fill('127.0.0.1');
    await page.getByLabel('Port').fill('1');
    await page.getByRole('button', { name: 'Send' }).click();
    await poll(text(page.getByRole('status'))).toMatch(/^Not released: the release to 127\.0\.0\.1:1 failed: /);
    await page.getByLabel('Port').fill(String(next.port));
    await page.getByRole('button', { name: 'Send' }).click();
    const arrived = await next.inbox.waitFor({ to: 'carol@example.com' });
    await poll(text(page.getByRole('status'))).toBe(`Released to 127.0.0.1:${next.port}: 250 2.0.0 Ok: queued as ${arrived.id}`);
    const [caught] = controller.inbox.messages as [CaughtMessage];
    expect(arrived.raw.equals(caught.raw)).toBe(true);
  });

  it('releases to the fixed target alone when the server has one', async () => {
    const next = new Controller(RequestHandler, { inbox: true });
    await next.start();
    cleanups.push(() => next.stop());
    const { controller, page } = await open({ releaseTo: { host: '127.0.0.1', port: next.port } });
    await send(controller.port, { subject: 'To the fixed target', text: 'hello' });
    await page.locator('.item', { hasText: 'To the fixed target' }).click();
    await page.getByRole('button', { name: 'Release…' }).click();
    await poll(text(page.locator('#release-target'))).toBe(`via 127.0.0.1:${next.port}`);
    expect(await page.getByLabel('Host').isVisible()).toBe(false);
    await page.getByRole('button', { name: 'Send' }).click();
    const arrived = await next.inbox.waitFor({ to: 'bob@example.com' });
    await poll(text(page.getByRole('status'))).toBe(`Released to 127.0.0.1:${next.port}: 250 2.0.0 Ok: queued as ${arrived.id}`);
  });

  it('works from the keyboard: / searches, arrows and j k move, Delete deletes, arrows switch views', async () => {
    const { controller, page } = await open();
    for (const subject of ['one', 'two', 'three'])
      await send(controller.port, { subject, text: `body ${subject}`, html: `<p>${subject}</p>` });
    await poll(() => page.locator('.item').count()).toBe(3);
    await page.keyboard.press('/');
    await poll(focused(page.getByLabel('Search messages'))).toBe(true);
    await page.keyboard.press('Tab'); // past the count: the list's first message
    await page.locator('.item').first().focus();
    await page.keyboard.press('ArrowDown');
    await poll(text(page.locator('#m-subject'))).toBe('three');
    await page.keyboard.press('j');
    await poll(text(page.locator('#m-subject'))).toBe('two');
    await poll(focused(page.locator('.item[aria-current="true"]'))).toBe(true);
    await page.keyboard.press('Delete');
    await poll(texts(page.locator('.item .subject'))).toEqual(['three', 'one']);
    await poll(text(page.locator('#m-subject'))).toBe('one');
    await page.getByRole('tab', { name: 'HTML' }).focus();
    await page.keyboard.press('ArrowRight');
    await poll(() => page.getByRole('tab', { name: 'Text' }).getAttribute('aria-selected')).toBe('true');
    await poll(text(page.locator('#text'))).toBe('body one');
    expect(controller.inbox.messages.map((m) => m.subject)).toEqual(['one', 'three']);
  });

  it("runs none of a hostile message's script, and loads its remote images only when asked", async () => {
    const { controller, page, base } = await open();
    const remote = await beacon();
    const at = `http://127.0.0.1:${remote.port}`;
    const html = [
      `<meta http-equiv="refresh" content="0; url=${at}/refresh">`,
      `<script>fetch('${at}/script'); fetch('/api/v1/messages', { method: 'DELETE' }); parent.document.title = 'owned';</script>`,
      `<img src="x" onerror="fetch('${at}/onerror')">`,
      `<p>Look at this</p><img id="pixel" src="${at}/pixel.gif" alt="pixel">`,
      `<div style="background: url(${at}/background.gif)">styled</div>`,
      `<iframe src="${at}/frame"></iframe><object data="${at}/object"></object>`,
      `<form action="${at}/form" method="post"><button id="go">go</button></form>`,
    ].join('\n');
    await send(controller.port, { subject: 'Hostile', text: 'plain', html });
    await page.locator('.item', { hasText: 'Hostile' }).click();
    const frame = page.frameLocator('#html');
    await poll(text(frame.locator('p'))).toBe('Look at this');
    await page.locator('#remote-note').waitFor();
    // The frame is loaded and the page has settled: nothing left it.
    await page.waitForLoadState('networkidle');
    await frame.locator('#go').click();
    await page.waitForLoadState('networkidle');
    expect(remote.hits).toEqual([]);
    expect(await page.title()).not.toBe('owned');
    expect(controller.inbox.messages).toHaveLength(1);
    // Opened on its own, outside the page's frame, the policy still holds.
    const alone = await page.context().newPage();
    const [caught] = controller.inbox.messages as [CaughtMessage];
    await alone.goto(`${base}/api/v1/messages/${caught.id}/html`);
    await alone.waitForLoadState('networkidle');
    expect(remote.hits).toEqual([]);
    expect(controller.inbox.messages).toHaveLength(1);
    await alone.close();
    // Asked for: the images come, and still no script runs.
    await page.getByRole('button', { name: 'Show remote images' }).click();
    await until(() => remote.hits.includes('/pixel.gif') && remote.hits.includes('/background.gif'), 10_000);
    await page.waitForLoadState('networkidle');
    expect([...remote.hits].sort()).toEqual(['/background.gif', '/pixel.gif']);
    expect(controller.inbox.messages).toHaveLength(1);
  });
});
