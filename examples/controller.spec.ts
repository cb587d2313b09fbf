/**
 * The pattern for testing your own mail-sending code, or your own handler: start a Controller
 * with an inbox before the tests, send real mail (here with nodemailer and with Python's smtplib),
 * wait for the message you expect, and make the server fail on purpose to test your retries.
 * Copy this file next to your code and run it with vitest.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RequestHandler } from '../lib/index.js';
import { Controller } from '../lib/entry/testing.js';

/** The handler under test: here it accepts everything; yours may refuse, store, forward. */
class Inbound extends RequestHandler {}

const controller = new Controller(Inbound, { settings: { hostname: 'test.local' }, inbox: true });
beforeAll(() => controller.start());
afterAll(() => controller.stop());
afterEach(() => controller.faults.clear());

/** The code under test: sends a welcome mail, trying up to three times on a temporary failure. */
async function sendWelcome(to: string): Promise<void> {
  const transport = nodemailer.createTransport({ host: controller.hostname, port: controller.port, secure: false, ignoreTLS: true });
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await transport.sendMail({ from: 'shop@example.com', to, subject: 'Welcome!', text: `Hello ${to}` });
        return;
      } catch (err) {
        if (
          attempt === 3 ||
          (err as { responseCode?: number }).responseCode === undefined ||
          (err as { responseCode: number }).responseCode >= 500
        )
          throw err;
      }
    }
  } finally {
    transport.close();
  }
}

describe('the welcome mail', () => {
  it('arrives, addressed to the new user', async () => {
    // A view of one recipient: tests running in parallel never see each other's mail.
    const mine = controller.inbox.for('ann@example.com');
    await sendWelcome('ann@example.com');
    const message = await mine.waitFor({ subject: 'Welcome!' }, { timeout: 2000 });
    expect(message.text).toContain('Hello ann@example.com');
    expect(message.mailFrom).toBe('shop@example.com');
  });

  it('survives two temporary failures', async () => {
    controller.faults.add({ at: 'after-data', reply: 451, times: 2 });
    await sendWelcome('bob@example.com');
    expect(controller.faults.injected).toBe(2);
    await controller.inbox.waitFor({ to: 'bob@example.com' });
  });

  it('gives up on a permanent refusal', async () => {
    controller.faults.add({ at: 'rcpt', recipient: 'gone@example.com', reply: 550 });
    await expect(sendWelcome('gone@example.com')).rejects.toMatchObject({ responseCode: 550 });
  });
});

describe('the Controller with smtplib', () => {
  it("receives mail sent with Python's smtplib, international addresses included", async () => {
    const script = `
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]))
s.sendmail('jörg@bücher.example', ['ünï@example.com'], 'Subject: from smtplib\\r\\n\\r\\nhi\\r\\n'.encode(), mail_options=['SMTPUTF8'])
s.quit()
`;
    // Asynchronously: the server runs in this very process and must keep answering.
    await promisify(execFile)('python3', ['-c', script, controller.hostname, String(controller.port)], { timeout: 15_000 });
    const message = await controller.inbox.waitFor({ to: 'ünï@example.com' });
    expect(message).toMatchObject({ mailFrom: 'jörg@bücher.example', subject: 'from smtplib' });
  });
});
