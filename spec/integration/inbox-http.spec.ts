/** The inbox over HTTP (InboxHttpServer): every route's exact JSON, its errors, `wait`, and what it refuses. */
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler } from '../../lib/index.js';
import { Controller, InboxHttpServer, type CaughtMessage } from '../../lib/entry/testing.js';
import { RawClient } from '../helpers/raw-client.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function catcher(): Promise<{ controller: Controller; base: string; http: InboxHttpServer }> {
  const controller = new Controller(RequestHandler, { inbox: true });
  await controller.start();
  cleanups.push(() => controller.stop());
  const http = new InboxHttpServer(controller.inbox, controller.faults);
  await http.listen();
  cleanups.push(() => http.close());
  return { controller, http, base: `http://127.0.0.1:${http.address().port}/api/v1` };
}

/** Sends one message with exact bytes, so every header of the JSON is known. */
async function send(port: number, from: string, to: string, body: string): Promise<void> {
  const client = await RawClient.ehlo(port);
  expect(await client.command(`MAIL FROM:<${from}>`)).toMatch(/^250 /);
  expect(await client.command(`RCPT TO:<${to}>`)).toMatch(/^250 /);
  expect(await client.command('DATA')).toMatch(/^354 /);
  expect(await client.command(`${body.replace(/\n/g, '\r\n')}\r\n.`)).toMatch(/^250 /);
  client.close();
}

const PLAIN = `From: Shop <shop@example.com>
To: Bob <bob@example.com>
Subject: Your order 42
X-Tag: orders

Thanks for your order.`;

const WITH_ATTACHMENT = `From: billing@example.com
To: carol@example.com
Subject: Invoice
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain

See the attachment.
--b1
Content-Type: text/plain; name="invoice.txt"
Content-Disposition: attachment; filename="invoice.txt"

total: 10
--b1--`;

/** The JSON a list shows of a message: its envelope and headline fields, its size and how many attachments. */
function summaryOf(m: CaughtMessage): Record<string, unknown> {
  const { id, mailFrom, rcptTos, from, to, subject } = m;
  return {
    id,
    mailFrom,
    rcptTos,
    from,
    to,
    subject,
    receivedAt: m.receivedAt.toISOString(),
    size: m.raw.length,
    attachments: m.attachments.length,
  };
}

describe('the inbox over HTTP', () => {
  it('lists newest first, shows one message whole, its source and its attachment, and deletes', async () => {
    const { controller, base } = await catcher();
    await send(controller.port, 'shop@example.com', 'bob@example.com', PLAIN);
    await send(controller.port, 'billing@example.com', 'carol@example.com', WITH_ATTACHMENT);
    const [plain, invoice] = controller.inbox.messages as [CaughtMessage, CaughtMessage];

    const list = await fetch(`${base}/messages`);
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await list.json()).toEqual({ total: 2, offset: 0, count: 2, messages: [summaryOf(invoice), summaryOf(plain)] });

    const one = await fetch(`${base}/messages/${plain.id}`);
    expect(await one.json()).toEqual({
      ...summaryOf(plain),
      cc: [],
      session: { remoteAddress: '127.0.0.1', heloName: 'c.test', secure: false, user: null },
      headers: { from: 'Shop <shop@example.com>', to: 'Bob <bob@example.com>', subject: 'Your order 42', 'x-tag': 'orders' },
      text: 'Thanks for your order.\n',
      html: null,
      attachments: [],
    });

    const raw = await fetch(`${base}/messages/${plain.id}/raw`);
    expect(raw.headers.get('content-type')).toBe('message/rfc822');
    expect(Buffer.from(await raw.arrayBuffer()).equals(plain.raw)).toBe(true);

    expect(((await (await fetch(`${base}/messages/${invoice.id}`)).json()) as { attachments: unknown }).attachments).toEqual([
      { index: 0, filename: 'invoice.txt', contentType: 'text/plain', size: 9 },
    ]);
    const file = await fetch(`${base}/messages/${invoice.id}/attachments/0`);
    expect(file.headers.get('content-disposition')).toBe('attachment; filename="invoice.txt"');
    expect(await file.text()).toBe('total: 10');

    const deleted = await fetch(`${base}/messages/${plain.id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(204);
    expect(controller.inbox.messages.map((m) => m.id)).toEqual([invoice.id]);
    expect((await fetch(`${base}/messages`, { method: 'DELETE' })).status).toBe(204);
    expect(controller.inbox.messages).toEqual([]);
  });

  it('searches by recipient, sender, subject, text, tag, header and date, in pages', async () => {
    const { controller, base } = await catcher();
    await send(controller.port, 'shop@example.com', 'bob@example.com', PLAIN);
    await send(controller.port, 'billing@example.com', 'carol@example.com', WITH_ATTACHMENT);
    const [plain, invoice] = controller.inbox.messages as [CaughtMessage, CaughtMessage];
    const ids = async (query: string): Promise<string[]> =>
      (((await (await fetch(`${base}/messages?${query}`)).json()) as { messages: { id: string }[] }).messages ?? []).map((m) => m.id);
    expect(await ids('to=BOB@example.com')).toEqual([plain.id]);
    expect(await ids('from=billing@example.com')).toEqual([invoice.id]);
    expect(await ids('subject=order')).toEqual([plain.id]);
    expect(await ids('text=attachment')).toEqual([invoice.id]);
    expect(await ids('tag=orders')).toEqual([plain.id]);
    expect(await ids(`header=${encodeURIComponent('X-Tag: orders')}`)).toEqual([plain.id]);
    expect(await ids(`since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toEqual([]);
    expect(await ids('until=2100-01-01')).toEqual([invoice.id, plain.id]);
    // q: anywhere, ignoring case (the web view's search box).
    expect(await ids('q=ORDER')).toEqual([plain.id]);
    expect(await ids('q=carol')).toEqual([invoice.id]);
    expect(await ids('q=example.com')).toEqual([invoice.id, plain.id]);
    expect(await ids('q=nowhere')).toEqual([]);
    expect(await (await fetch(`${base}/messages?limit=1&offset=1`)).json()).toEqual({
      total: 2,
      offset: 1,
      count: 1,
      messages: [summaryOf(plain)],
    });
  });

  it('answers a bad request with a 400 naming the parameter, an unknown id with 404, a wrong method with 405', async () => {
    const { base } = await catcher();
    const answer = async (url: string, init?: RequestInit): Promise<[number, unknown]> => {
      const res = await fetch(url, init);
      return [res.status, await res.json()];
    };
    expect(await answer(`${base}/messages?recipient=x`)).toEqual([
      400,
      { error: 'unknown query parameter recipient', parameter: 'recipient' },
    ]);
    expect(await answer(`${base}/messages?limit=0`)).toEqual([
      400,
      { error: 'query parameter limit must be a whole number from 1 to 1000', parameter: 'limit' },
    ]);
    expect(await answer(`${base}/messages?since=yesterday`)).toEqual([
      400,
      { error: 'query parameter since must be an ISO 8601 date', parameter: 'since' },
    ]);
    expect(await answer(`${base}/messages?to=`)).toEqual([400, { error: 'query parameter to is empty', parameter: 'to' }]);
    expect(await answer(`${base}/messages?header=nocolon`)).toEqual([
      400,
      { error: 'query parameter header must be "Name: value"', parameter: 'header' },
    ]);
    expect(await answer(`${base}/wait?timeout=300001`)).toEqual([
      400,
      { error: 'query parameter timeout must be a whole number from 0 to 300000', parameter: 'timeout' },
    ]);
    expect(await answer(`${base}/messages/NOPE`)).toEqual([404, { error: 'no message NOPE' }]);
    expect(await answer(`${base}/messages/NOPE/raw`)).toEqual([404, { error: 'no message NOPE' }]);
    expect(await answer(`${base}/nothing`)).toEqual([404, { error: 'no route /api/v1/nothing' }]);
    const put = await fetch(`${base}/messages`, { method: 'PUT' });
    expect([put.status, put.headers.get('allow'), await put.json()]).toEqual([405, 'GET, DELETE', { error: 'PUT not allowed here' }]);
  });

  it('answers HEAD as GET, without the body: the API, the page, the event stream', async () => {
    const { base } = await catcher();
    const page = base.replace('/api/v1', '');
    for (const url of [`${base}/messages`, `${base}/info`, `${page}/`, `${base}/events`]) {
      const [get, head] = [await fetch(url), await fetch(url, { method: 'HEAD' })];
      const full = url.endsWith('/events') ? '' : await get.text();
      if (url.endsWith('/events')) await get.body?.cancel();
      expect([head.status, head.headers.get('content-type'), await head.text()]).toEqual([200, get.headers.get('content-type'), '']);
      if (!url.endsWith('/events')) expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(full));
    }
  });

  it('wait answers as soon as a matching message arrives, and on timeout answers 408 with what did arrive', async () => {
    const { controller, base } = await catcher();
    const waiting = fetch(`${base}/wait?to=bob@example.com&timeout=10000`);
    await send(controller.port, 'billing@example.com', 'carol@example.com', WITH_ATTACHMENT);
    await send(controller.port, 'shop@example.com', 'bob@example.com', PLAIN);
    const [invoice, plain] = controller.inbox.messages as [CaughtMessage, CaughtMessage];
    const found = await waiting;
    expect(found.status).toBe(200);
    expect(((await found.json()) as { id: string }).id).toBe(plain.id);
    // Already here: at once.
    expect(((await (await fetch(`${base}/wait?subject=Invoice`)).json()) as { id: string }).id).toBe(invoice.id);

    const late = await fetch(`${base}/wait?to=dave@example.com&timeout=200`);
    expect(late.status).toBe(408);
    expect(await late.json()).toEqual({
      error: 'no message matching {"to":"dave@example.com"} within 200 ms',
      arrived: [summaryOf(plain), summaryOf(invoice)],
    });
  });

  it('refuses a state change from another site, and asks for basic auth when it is set', async () => {
    const { controller, base } = await catcher();
    await send(controller.port, 'shop@example.com', 'bob@example.com', PLAIN);
    const crossSite = await fetch(`${base}/messages`, { method: 'DELETE', headers: { Origin: 'http://evil.test' } });
    expect([crossSite.status, await crossSite.json()]).toEqual([403, { error: 'cross-site request refused' }]);
    const fetchMeta = await fetch(`${base}/messages`, { method: 'DELETE', headers: { 'Sec-Fetch-Site': 'cross-site' } });
    expect(fetchMeta.status).toBe(403);
    expect(controller.inbox.messages).toHaveLength(1);

    const locked = new InboxHttpServer(controller.inbox);
    await locked.listen({ auth: { user: 'team', password: 's3cret' } });
    cleanups.push(() => locked.close());
    const url = `http://127.0.0.1:${locked.address().port}/api/v1/messages`;
    const refused = await fetch(url);
    expect([refused.status, refused.headers.get('www-authenticate'), await refused.json()]).toEqual([
      401,
      'Basic realm="sirocco inbox", charset="UTF-8"',
      { error: 'authentication required' },
    ]);
    const wrong = await fetch(url, { headers: { Authorization: `Basic ${Buffer.from('team:guess').toString('base64')}` } });
    expect(wrong.status).toBe(401);
    const right = await fetch(url, { headers: { Authorization: `Basic ${Buffer.from('team:s3cret').toString('base64')}` } });
    expect(right.status).toBe(200);
  });

  it('names a bad port or user when asked to listen', async () => {
    const { controller } = await catcher();
    const http = new InboxHttpServer(controller.inbox);
    await expect(http.listen({ port: 70_000 })).rejects.toThrow('InboxHttpServer: port must be 0 to 65535, got 70000');
    await expect(http.listen({ auth: { user: 'a:b', password: 'x' } })).rejects.toThrow('InboxHttpServer: auth.user must not contain ":"');
  });

  it('adds, lists and clears faults: the next RCPT to x fails with 452, once', async () => {
    const { controller, base } = await catcher();
    const post = (body: unknown, type = 'application/json'): Promise<Response> =>
      fetch(`${base}/faults`, { method: 'POST', headers: { 'Content-Type': type }, body: JSON.stringify(body) });
    const added = await post({ at: 'rcpt', recipient: 'x@example.com', reply: 452 });
    expect([added.status, await added.json()]).toEqual([
      201,
      { faults: [{ at: 'rcpt', reply: 452, drop: false, delayMs: 0, recipient: 'x@example.com', left: 1 }], pending: 1, injected: 0 },
    ]);
    const client = await RawClient.ehlo(controller.port);
    expect(await client.command('MAIL FROM:<a@example.com>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO:<y@example.com>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await client.command('RCPT TO:<x@example.com>')).toBe('452 4.3.1 Insufficient system storage (injected fault)\r\n');
    expect(await client.command('RCPT TO:<x@example.com>')).toBe('250 2.1.5 Recipient ok\r\n');
    client.close();
    expect(await (await fetch(`${base}/faults`)).json()).toEqual({ faults: [], pending: 0, injected: 1 });

    const random = await post({ at: 'after-data', seed: 42, rate: 0.5, reply: 451, recipientPattern: 'ignored' });
    expect([random.status, await random.json()]).toEqual([400, { error: 'Fault: recipient is for at: rcpt' }]);
    const seeded = await post({ at: 'after-data', seed: 42, rate: 0.5, reply: 451 });
    expect(((await seeded.json()) as { faults: unknown[] }).faults).toEqual([
      { at: 'after-data', reply: 451, drop: false, delayMs: 0, recipient: null, seed: 42, rate: 0.5 },
    ]);
    expect((await fetch(`${base}/faults`, { method: 'DELETE' })).status).toBe(204);
    expect(await (await fetch(`${base}/faults`)).json()).toEqual({ faults: [], pending: 0, injected: 1 });

    const bad = async (body: unknown, type?: string): Promise<[number, unknown]> => {
      const res = await post(body, type);
      return [res.status, await res.json()];
    };
    expect(await bad({ at: 'rcpt' }, 'text/plain')).toEqual([415, { error: 'the body must be application/json' }]);
    expect(await bad({ at: 'rcpt', colour: 'red' })).toEqual([400, { error: 'unknown field colour', parameter: 'colour' }]);
    expect(await bad({ reply: 452 })).toEqual([400, { error: 'field at is required', parameter: 'at' }]);
    expect(await bad({ at: 'rcpt', times: '2' })).toEqual([400, { error: 'field times must be a number', parameter: 'times' }]);
    expect(await bad({ at: 'later' })).toEqual([
      400,
      { error: 'Fault: at must be one of connect, helo, mail, rcpt, data, after-data, got later' },
    ]);
    expect(await bad([1])).toEqual([400, { error: 'the body must be a JSON object' }]);
    const big = await fetch(`${base}/faults`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: 'x'.repeat(20_000),
    });
    expect([big.status, await big.json()]).toEqual([413, { error: 'the body must be at most 16384 bytes' }]);
  });

  it('streams arrivals and deletions as Server-Sent Events', async () => {
    const { controller, base } = await catcher();
    const events = await fetch(`${base}/events`);
    expect(events.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = events.body?.getReader();
    let text = '';
    const until = async (pattern: RegExp): Promise<void> => {
      const deadline = Date.now() + 5000;
      while (!pattern.test(text)) {
        if (Date.now() > deadline || reader === undefined) throw new Error(`no ${String(pattern)} in ${text}`);
        const chunk = (await reader.read()) as { value?: Uint8Array };
        text += Buffer.from(chunk.value ?? new Uint8Array()).toString('utf8');
      }
    };
    await until(/^: sirocco inbox events\n\n/);
    await send(controller.port, 'shop@example.com', 'bob@example.com', PLAIN);
    const [plain] = controller.inbox.messages as [CaughtMessage];
    await until(/event: message\n/);
    await fetch(`${base}/messages/${plain.id}`, { method: 'DELETE' });
    await until(/event: cleared\n/);
    expect(text).toBe(
      ': sirocco inbox events\n\n' +
        `event: message\ndata: ${JSON.stringify(summaryOf(plain))}\n\n` +
        `event: deleted\ndata: {"ids":["${plain.id}"]}\n\n` +
        'event: cleared\ndata: {}\n\n',
    );
    await reader?.cancel();
  });

  it("serves the web view under a strict policy, and a message's HTML sandboxed, remote images only when asked", async () => {
    const { controller, base } = await catcher();
    const origin = base.slice(0, base.indexOf('/api/v1'));
    const page = await fetch(`${origin}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(await page.text()).toContain('<script type="module" src="/assets/app.js"></script>');
    for (const asset of ['/assets/app.js', '/assets/app.css', '/assets/icon.svg']) expect((await fetch(origin + asset)).status).toBe(200);
    expect(await (await fetch(`${origin}/assets/other.js`)).json()).toEqual({ error: 'no route /assets/other.js' });
    const post = await fetch(`${origin}/`, { method: 'POST' });
    expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET']);

    await send(
      controller.port,
      'news@example.com',
      'bob@example.com',
      `From: news@example.com
Subject: News
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<meta http-equiv="Refresh" content="0; url=http://127.0.0.1:1/"><p>Hello <img src="http://127.0.0.1:1/pixel.gif"></p>`,
    );
    await send(controller.port, 'shop@example.com', 'bob@example.com', PLAIN);
    const [news, plain] = controller.inbox.messages as [CaughtMessage, CaughtMessage];
    const html = await fetch(`${base}/messages/${news.id}/html`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const policy =
      "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; style-src 'unsafe-inline'; font-src data:; img-src data:; " +
      "form-action 'none'; base-uri 'none'; frame-ancestors 'self'";
    expect(html.headers.get('content-security-policy')).toBe(policy);
    expect(html.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await html.text()).toBe('<p>Hello <img src="http://127.0.0.1:1/pixel.gif"></p>\n');
    const remote = await fetch(`${base}/messages/${news.id}/html?images=remote`);
    expect(remote.headers.get('content-security-policy')).toBe(policy.replace('img-src data:;', 'img-src data: http: https:;'));
    expect(await (await fetch(`${base}/messages/${plain.id}/html`)).json()).toEqual({ error: `message ${plain.id} has no HTML body` });
    expect(await (await fetch(`${base}/messages/${news.id}/html?images=all`)).json()).toEqual({
      error: 'query parameter images must be "remote"',
      parameter: 'images',
    });
    expect(await (await fetch(`${base}/messages/${news.id}/html?script=1`)).json()).toEqual({
      error: 'unknown query parameter script',
      parameter: 'script',
    });
    expect(await (await fetch(`${base}/info`)).json()).toEqual({ messages: 2, releaseTo: null, faults: true });
  });

  it('describes itself in OpenAPI 3.1, and every operation it describes answers one of its documented statuses', async () => {
    const { controller, base } = await catcher();
    await send(controller.port, 'billing@example.com', 'carol@example.com', WITH_ATTACHMENT);
    const [invoice] = controller.inbox.messages as [CaughtMessage];
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual([
      '/api/v1/messages',
      '/api/v1/messages/{id}',
      '/api/v1/messages/{id}/raw',
      '/api/v1/messages/{id}/html',
      '/api/v1/messages/{id}/attachments/{index}',
      '/api/v1/messages/{id}/release',
      '/api/v1/wait',
      '/api/v1/faults',
      '/api/v1/events',
      '/api/v1/info',
      '/api/v1/openapi.json',
    ]);
    const origin = base.slice(0, base.indexOf('/api/v1'));
    // Deleting operations last, so the message is there for the others.
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ path, method, op })),
    );
    operations.sort((a, b) => Number(a.method === 'delete') - Number(b.method === 'delete'));
    for (const { path, method, op } of operations) {
      const url = origin + path.replace('{id}', invoice.id).replace('{index}', '0') + (path.endsWith('/wait') ? '?timeout=0' : '');
      const controllerAbort = new AbortController();
      const res = await fetch(url, {
        method: method.toUpperCase(),
        signal: controllerAbort.signal,
        ...(method === 'post' ? { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ at: 'helo' }) } : {}),
      });
      expect(Object.keys(op.responses), `${method} ${path}`).toContain(String(res.status));
      controllerAbort.abort();
    }
  });

  it('releases a message to another SMTP server, its bytes unchanged, and says why when it cannot', async () => {
    const { controller, base } = await catcher();
    const next = new Controller(RequestHandler, { inbox: true });
    await next.start();
    cleanups.push(() => next.stop());
    await send(controller.port, 'shop@example.com', 'bob@example.com', PLAIN);
    const [plain] = controller.inbox.messages as [CaughtMessage];
    const release = async (body: unknown): Promise<[number, unknown]> => {
      const res = await fetch(`${base}/messages/${plain.id}/release`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      return [res.status, await res.json()];
    };
    const [status, answer] = await release({ host: '127.0.0.1', port: next.port, to: ['carol@example.com'] });
    expect(status).toBe(200);
    const arrived = await next.inbox.waitFor({ to: 'carol@example.com' });
    expect(answer).toEqual({
      released: plain.id,
      host: '127.0.0.1',
      port: next.port,
      to: ['carol@example.com'],
      response: `250 2.0.0 Ok: queued as ${arrived.id}`,
    });
    expect(arrived.mailFrom).toBe('shop@example.com');
    expect(arrived.raw.equals(plain.raw)).toBe(true);

    expect(await release({ port: next.port })).toEqual([
      400,
      { error: 'field host is required (no release target is set)', parameter: 'host' },
    ]);
    expect(await release({ host: '127.0.0.1', port: 0 })).toEqual([
      400,
      { error: 'field port must be a whole number from 1 to 65535', parameter: 'port' },
    ]);
    expect(await release({ host: '127.0.0.1', port: next.port, to: ['nobody'] })).toEqual([
      400,
      { error: 'field to must be a list of one or more addresses', parameter: 'to' },
    ]);
    next.faults.add({ at: 'rcpt', reply: 550 });
    const [refused, why] = await release({ host: '127.0.0.1', port: next.port });
    expect(refused).toBe(502);
    expect((why as { error: string }).error).toMatch(
      /^the release to 127\.0\.0\.1:\d+ failed: .*550 5\.1\.1 Mailbox unavailable \(injected fault\)/,
    );

    const fixed = new InboxHttpServer(controller.inbox);
    await fixed.listen({ releaseTo: { host: '127.0.0.1', port: next.port } });
    cleanups.push(() => fixed.close());
    const fixedUrl = `http://127.0.0.1:${fixed.address().port}/api/v1/messages/${plain.id}/release`;
    const elsewhere = await fetch(fixedUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"host":"127.0.0.1","port":25}',
    });
    expect([elsewhere.status, await elsewhere.json()]).toEqual([
      400,
      { error: 'this server releases only to its own target; give no host or port', parameter: 'host' },
    ]);
    const toTarget = await fetch(fixedUrl, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    expect(toTarget.status).toBe(200);
    await next.inbox.waitFor({ to: 'bob@example.com' });
  });
});
