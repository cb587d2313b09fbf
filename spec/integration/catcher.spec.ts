/** The Controller as a test suite's mail catcher: its inbox, waitFor, views, caps and injected faults. */
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { RequestHandler, SMTPError } from '../../lib/index.js';
import { Controller, Inbox, InboxTimeoutError, type CaughtMessage } from '../../lib/entry/testing.js';
import { plainTransport } from '../helpers/mailer.js';
import { RawClient } from '../helpers/raw-client.js';

const running: Controller[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

async function catcher(options: ConstructorParameters<typeof Controller>[1] = { inbox: true }): Promise<Controller> {
  const controller = new Controller(RequestHandler, options);
  await controller.start();
  running.push(controller);
  return controller;
}

describe('the inbox', () => {
  it('keeps each message with its envelope, session and a parsed view', async () => {
    const controller = await catcher();
    const transport = plainTransport(controller.port);
    await transport.sendMail({
      envelope: { from: 'shop@example.com', to: ['bob@example.com', 'carol@example.com'] },
      from: 'Shop <shop@example.com>',
      to: 'Bob <bob@example.com>',
      cc: 'carol@example.com',
      subject: 'Your order 42',
      text: 'Thanks for your order.',
      html: '<p>Thanks for your order.</p>',
      headers: { 'X-Mailer-Test': 'catcher' },
      attachments: [{ filename: 'invoice.txt', content: 'total: 10' }],
    });
    transport.close();
    const message = await controller.inbox.waitFor({ to: 'BOB@example.com' });
    expect(message).toMatchObject({
      mailFrom: 'shop@example.com',
      rcptTos: ['bob@example.com', 'carol@example.com'],
      subject: 'Your order 42',
      from: ['shop@example.com'],
      to: ['bob@example.com'],
      cc: ['carol@example.com'],
      text: 'Thanks for your order.',
      html: '<p>Thanks for your order.</p>',
      session: { remoteAddress: '127.0.0.1', secure: false, user: undefined },
    });
    expect(message.id).toMatch(/^[0-9A-Z]{12}$/);
    expect(message.headers.get('x-mailer-test')).toBe('catcher');
    expect(message.attachments.map((a) => [a.filename, a.contentType, a.content.toString()])).toEqual([
      ['invoice.txt', 'text/plain', 'total: 10'],
    ]);
    expect(message.raw.toString()).toContain('Subject: Your order 42\r\n');
  });

  it('waitFor resolves with a message that arrives after it was called, matching every field given', async () => {
    const controller = await catcher();
    const waiting = controller.inbox.waitFor({ from: /@shop\.test$/, subject: /^Receipt/, text: 'paid', header: { 'X-Kind': 'receipt' } });
    const transport = plainTransport(controller.port);
    await transport.sendMail({
      from: 'a@shop.test',
      to: 'b@x.test',
      subject: 'Receipt 1',
      text: 'not yet',
      headers: { 'X-Kind': 'receipt' },
    });
    await transport.sendMail({
      from: 'a@shop.test',
      to: 'b@x.test',
      subject: 'Receipt 2',
      text: 'paid in full',
      headers: { 'X-Kind': 'receipt' },
    });
    transport.close();
    expect((await waiting).subject).toBe('Receipt 2');
    expect(controller.inbox.find((m: CaughtMessage) => m.subject.endsWith('1')).map((m) => m.subject)).toEqual(['Receipt 1']);
    controller.inbox.clear();
    expect(controller.inbox.messages).toEqual([]);
  });

  it('waitFor fails after its timeout naming the query and what did arrive', async () => {
    const controller = await catcher();
    const transport = plainTransport(controller.port);
    await transport.sendMail({ envelope: { from: 'a@b.test', to: ['c@d.test'] }, raw: 'Subject: Hello\r\n\r\nx\r\n' });
    transport.close();
    const failure = await controller.inbox.waitFor({ to: 'zoe@d.test', subject: /welcome/i }, { timeout: 50 }).catch((e: unknown) => e);
    await expect(
      controller.inbox.waitFor(
        function welcomeMail(m) {
          return m.subject === 'Welcome';
        },
        { timeout: 10 },
      ),
    ).rejects.toThrow('waitFor: no message matching the predicate welcomeMail within 10 ms; 1 arrived');
    expect(failure).toBeInstanceOf(InboxTimeoutError);
    expect((failure as Error).message).toBe(
      'waitFor: no message matching {"to":"zoe@d.test","subject":"/welcome/i"} within 50 ms; 1 arrived:\n  <a@b.test> -> <c@d.test> "Hello"',
    );
    await expect(controller.inbox.for('nobody@d.test').waitFor(undefined, { timeout: 10 })).rejects.toThrow(
      'waitFor: no message within 10 ms; none arrived',
    );
  });

  it('gives parallel tests views of their own: by recipient, by X-Tag and by plus-address', async () => {
    const controller = await catcher();
    const inbox = controller.inbox;
    const send = async (to: string, subject: string, headers: Record<string, string> = {}): Promise<void> => {
      const transport = plainTransport(controller.port);
      await transport.sendMail({ from: 'app@x.test', to, subject, text: 'x', headers });
      transport.close();
    };
    const [a, b] = await Promise.all([
      (async () => {
        await send('test-a@x.test', 'for a');
        return inbox.for('test-a@x.test').waitFor({ subject: 'for' });
      })(),
      (async () => {
        await send('test-b@x.test', 'for b');
        return inbox.for('test-b@x.test').waitFor({ subject: 'for' });
      })(),
    ]);
    expect([a.subject, b.subject]).toEqual(['for a', 'for b']);
    await send('someone@x.test', 'tagged by header', { 'X-Tag': 'signup' });
    await send('someone+signup@x.test', 'tagged by address');
    await send('someone+other@x.test', 'another tag');
    expect(
      inbox
        .tagged('signup')
        .messages.map((m) => m.subject)
        .sort(),
    ).toEqual(['tagged by address', 'tagged by header']);
    inbox.tagged('signup').clear();
    expect(inbox.messages.map((m) => m.subject)).toEqual(['for a', 'for b', 'another tag']);
  });

  it('hands each arrival to a for-await loop and to a listener', async () => {
    const controller = await catcher();
    const seen: string[] = [];
    const stop = controller.inbox.onMessage((m) => seen.push(m.subject));
    const iterator = controller.inbox[Symbol.asyncIterator]();
    const next = iterator.next();
    const transport = plainTransport(controller.port);
    await transport.sendMail({ from: 'a@b.test', to: 'c@d.test', subject: 'one', text: 'x' });
    expect(((await next).value as CaughtMessage).subject).toBe('one');
    stop();
    await transport.sendMail({ from: 'a@b.test', to: 'c@d.test', subject: 'two', text: 'x' });
    transport.close();
    expect(((await iterator.next()).value as CaughtMessage).subject).toBe('two');
    await iterator.return?.();
    expect(seen).toEqual(['one']);
  });

  it('holds at most maxMessages and maxBytes: the oldest go, a message bigger than the cap is refused', async () => {
    const controller = await catcher({ inbox: { maxMessages: 3, maxBytes: 4096 } });
    const transport = plainTransport(controller.port);
    for (let i = 1; i <= 5; i++)
      await transport.sendMail({ envelope: { from: 'a@b.test', to: ['c@d.test'] }, raw: `Subject: m${i}\r\n\r\nx\r\n` });
    expect(controller.inbox.messages.map((m) => m.subject)).toEqual(['m3', 'm4', 'm5']);
    expect(controller.inbox.dropped).toBe(2);
    await expect(
      transport.sendMail({ envelope: { from: 'a@b.test', to: ['c@d.test'] }, raw: `Subject: big\r\n\r\n${'x'.repeat(5000)}\r\n` }),
    ).rejects.toMatchObject({ response: '552 5.3.4 Message larger than the test inbox keeps (4096 bytes)' });
    transport.close();
    expect(() => new Inbox({ maxMessages: 0 })).toThrow('Inbox: maxMessages must be a positive whole number, got 0');
  });
});

describe('faults on purpose', () => {
  it("fails the next two messages with 451 after their data; nodemailer's third try gets through", async () => {
    const controller = await catcher();
    controller.faults.add({ at: 'after-data', reply: 451, times: 2 });
    const transport = plainTransport(controller.port);
    const message = { from: 'a@b.test', to: 'c@d.test', subject: 'retry me', text: 'x' };
    for (let i = 0; i < 2; i++) {
      await expect(transport.sendMail(message)).rejects.toMatchObject({
        responseCode: 451,
        response: '451 4.3.0 Temporary failure, try again later (injected fault)',
      });
    }
    expect((await transport.sendMail(message)).response).toMatch(/^250 /);
    transport.close();
    expect(controller.faults.injected).toBe(2);
    expect(controller.faults.pending).toBe(0);
    expect(controller.inbox.messages).toHaveLength(1);
  });

  it('refuses one recipient at RCPT while the other gets the message', async () => {
    const controller = await catcher();
    controller.faults.add({ at: 'rcpt', recipient: /^flaky@/, reply: 452 });
    const transport = plainTransport(controller.port);
    const info = await transport.sendMail({ from: 'a@b.test', to: ['ok@d.test', 'flaky@d.test'], text: 'x' });
    transport.close();
    expect(info.accepted).toEqual(['ok@d.test']);
    expect(info.rejected).toEqual(['flaky@d.test']);
    expect((await controller.inbox.waitFor({ to: 'ok@d.test' })).rcptTos).toEqual(['ok@d.test']);
  });

  it('answers each step with the chosen reply, exactly', async () => {
    const controller = await catcher();
    const { faults } = controller;
    faults
      .add({ at: 'helo', reply: 554 })
      .add({ at: 'mail', reply: new SMTPError(550, [5, 7, 1], 'Sender blocked') })
      .add({ at: 'data', reply: 552 });
    const client = await RawClient.greeted(controller.port);
    expect(await client.command('EHLO c.test')).toBe('554 5.7.1 Transaction failed (injected fault)\r\n');
    expect(await client.command('EHLO c.test')).toMatch(/^250-/);
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('550 5.7.1 Sender blocked\r\n');
    expect(await client.command('MAIL FROM:<a@b.test>')).toBe('250 2.1.0 Sender ok\r\n');
    expect(await client.command('RCPT TO:<c@d.test>')).toBe('250 2.1.5 Recipient ok\r\n');
    expect(await client.command('DATA')).toBe('552 5.3.4 Message too big (injected fault)\r\n');
    expect(await client.command('DATA')).toMatch(/^354 /);
    client.close();
  });

  it('turns a connection away with 421, drops one at MAIL, and answers slower than a client waits', async () => {
    const controller = await catcher();
    controller.faults.add({ at: 'connect', reply: 421 }).add({ at: 'mail', drop: true });
    const transport = plainTransport(controller.port);
    const message = { from: 'a@b.test', to: 'c@d.test', text: 'x' };
    await expect(transport.sendMail(message)).rejects.toMatchObject({
      response: '421 4.3.2 Service not available, closing connection (injected fault)',
    });
    await expect(transport.sendMail(message)).rejects.toMatchObject({ code: 'ECONNECTION' });
    controller.faults.add({ at: 'helo', reply: 'none', delayMs: 2000 });
    const impatient = nodemailer.createTransport({ host: '127.0.0.1', port: controller.port, ignoreTLS: true, socketTimeout: 300 });
    await expect(impatient.sendMail(message)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    impatient.close();
    expect((await transport.sendMail(message)).response).toMatch(/^250 /);
    transport.close();
  });

  it('fails a seeded random share of messages, the same ones for the same seed', async () => {
    const pattern = async (): Promise<boolean[]> => {
      const controller = await catcher();
      controller.faults.random({ seed: 7, rate: 0.5, at: 'after-data', reply: 451 });
      const transport = plainTransport(controller.port);
      const outcomes: boolean[] = [];
      for (let i = 0; i < 12; i++) {
        outcomes.push(
          await transport.sendMail({ from: 'a@b.test', to: 'c@d.test', text: 'x' }).then(
            () => true,
            () => false,
          ),
        );
      }
      transport.close();
      return outcomes;
    };
    const first = await pattern();
    expect(await pattern()).toEqual(first);
    expect(first.filter((ok) => !ok).length).toBeGreaterThan(0);
    expect(first.filter((ok) => ok).length).toBeGreaterThan(0);
  });

  it("keeps a fault planned before start() for the tests' connections, not the Controller's own check", async () => {
    const controller = new Controller(RequestHandler, { inbox: true });
    controller.faults.add({ at: 'connect', reply: 421 });
    await controller.start();
    running.push(controller);
    const client = await RawClient.connect(controller.port);
    expect(await client.closedByServer()).toBe('421 4.3.2 Service not available, closing connection (injected fault)\r\n');
  });

  it('says what is wrong with a fault', () => {
    const controller = new Controller(RequestHandler);
    expect(() => controller.faults.add({ at: 'quit' as never })).toThrow(
      'Fault: at must be one of connect, helo, mail, rcpt, data, after-data, got quit',
    );
    expect(() => controller.faults.add({ at: 'mail', reply: 250 })).toThrow(
      "Fault: reply must be a 4xx or 5xx code, an SMTPError or 'none', got 250",
    );
    expect(() => controller.faults.add({ at: 'mail', recipient: 'x@y.test' })).toThrow('Fault: recipient is for at: rcpt');
    expect(() => controller.inbox).toThrow('Controller: no inbox; make the Controller with the inbox option (inbox: true)');
  });
});
