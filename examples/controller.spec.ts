/**
 * The pattern for testing your own handler: start a Controller before the tests, send real mail
 * with nodemailer and with Python's smtplib, assert on what the handler received, stop after.
 * Copy this file next to your handler and run it with vitest.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, RequestHandler } from '../lib/index.js';

/** The handler under test: here it only remembers what it received. */
const inbox: { from: string; to: readonly string[]; subject: string | undefined }[] = [];
class Inbound extends RequestHandler {
  override data(): void {
    inbox.push({ from: this.request.mailFrom, to: this.request.rcptTos, subject: this.request.headers.get('subject') });
  }
}

const controller = new Controller(Inbound, { settings: { hostname: 'test.local' } });
beforeAll(() => controller.start());
afterAll(() => controller.stop());

describe('Inbound', () => {
  it('receives mail sent with nodemailer', async () => {
    const transport = nodemailer.createTransport({ host: controller.hostname, port: controller.port, secure: false, ignoreTLS: true });
    await transport.sendMail({ from: 'alice@example.com', to: 'bob@example.com', subject: 'from nodemailer', text: 'hello' });
    transport.close();
    expect(inbox).toContainEqual({ from: 'alice@example.com', to: ['bob@example.com'], subject: 'from nodemailer' });
  });

  it("receives mail sent with Python's smtplib, international addresses included", async () => {
    const script = `
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]))
s.sendmail('jörg@bücher.example', ['ünï@example.com'], 'Subject: from smtplib\\r\\n\\r\\nhi\\r\\n'.encode(), mail_options=['SMTPUTF8'])
s.quit()
`;
    // Asynchronously: the server runs in this very process and must keep answering.
    await promisify(execFile)('python3', ['-c', script, controller.hostname, String(controller.port)], { timeout: 15_000 });
    expect(inbox).toContainEqual({ from: 'jörg@bücher.example', to: ['ünï@example.com'], subject: 'from smtplib' });
  });
});
