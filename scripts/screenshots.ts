// Makes the README's pictures of the catcher's web view: a catcher with a few messages, opened in
// Debian's chromium (headless, through Playwright). Run: npm run screenshots
import { chromium } from 'playwright-core';
import nodemailer from 'nodemailer';
import { RequestHandler } from '../lib/index.js';
import { Controller } from '../lib/entry/testing.js';

const controller = new Controller(RequestHandler, { inbox: true });
await controller.start();
const http = await controller.serveInbox();
const transport = nodemailer.createTransport({ host: '127.0.0.1', port: controller.port, secure: false, ignoreTLS: true });
const mails = [
  { from: 'Shop <orders@shop.example>', to: 'ann@example.com', subject: 'Your order 1042 has shipped', text: 'Your parcel is on its way.' },
  {
    from: 'Billing <billing@shop.example>',
    to: 'ann@example.com',
    subject: 'Invoice 2026-118',
    text: 'Your invoice is attached.',
    attachments: [{ filename: 'invoice-2026-118.pdf', content: Buffer.from('%PDF-1.4 example\n'), contentType: 'application/pdf' }],
  },
  {
    from: 'News <news@weekly.example>',
    to: 'bob@example.com',
    subject: 'This week: 5 things',
    html: '<p>Hello Bob,</p><img src="https://tracker.weekly.example/open.gif" alt=""><p>Our picks of the week.</p>',
  },
  {
    from: 'Accounts <no-reply@app.example>',
    to: 'carol@example.com',
    subject: 'Reset your password',
    text: 'Use this link within an hour.',
  },
  {
    from: 'Team <hello@app.example>',
    to: 'dan@example.com',
    subject: 'Welcome to the app, Dan',
    text: 'Welcome, Dan! Confirm your address to start.',
    html:
      '<div style="font-family:sans-serif;max-width:520px;margin:24px auto;padding:24px;border:1px solid #ddd;border-radius:8px">' +
      '<h1 style="color:#c2410c;margin-top:0">Welcome, Dan!</h1><p>Thanks for signing up. Confirm your address to start.</p>' +
      '<p><a href="https://app.example/confirm?t=abc" style="background:#c2410c;color:#fff;padding:10px 16px;border-radius:6px;text-decoration:none">Confirm my address</a></p>' +
      '<p style="color:#666;font-size:12px">You received this because you signed up at app.example.</p></div>',
  },
];
for (const mail of mails) await transport.sendMail(mail);
transport.close();

const browser = await chromium.launch({ executablePath: process.env.SIROCCO_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
await page.goto(`http://127.0.0.1:${http.address().port}/`);
await page
  .locator('.item')
  .nth(mails.length - 1)
  .waitFor();
await page.locator('.item', { hasText: 'Welcome to the app' }).click();
await page.frameLocator('#html').locator('h1').waitFor();
await page.screenshot({ path: 'docs/images/catcher-list.png' });
await page.locator('.item', { hasText: 'Invoice' }).click();
await page.getByRole('tab', { name: 'Headers' }).click();
await page.locator('#headers tbody tr').first().waitFor();
await page.screenshot({ path: 'docs/images/catcher-headers.png' });
await browser.close();
await controller.stop();
console.log('docs/images/catcher-list.png, docs/images/catcher-headers.png');
