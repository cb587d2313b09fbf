/** Prometheus metrics over real sockets: what a scrape of /metrics shows after real traffic. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadProm } from '../../lib/server/metrics.js';
import { RequestHandler, SMTPError } from '../../lib/index.js';
import { Deliver } from '../../lib/entry/outbound.js';
import { RawClient } from '../helpers/raw-client.js';
import { closeServers, startServer } from '../helpers/server.js';

afterEach(closeServers);

describe('metrics', () => {
  it("the process's metrics are collected once for all its servers (prom-client's GC observer outlives a server)", async () => {
    const prom = await loadProm();
    const collect = vi.spyOn(prom, 'collectDefaultMetrics');
    try {
      for (let i = 0; i < 3; i++) {
        const { server } = await startServer(RequestHandler, { metricsListen: '127.0.0.1:0' });
        const text = await (await fetch(`http://127.0.0.1:${server.metricsAddress()?.port ?? 0}/metrics`)).text();
        expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
        expect(text).toMatch(/^sirocco_smtpd_connections 0$/m);
        await server.close();
      }
      expect(collect.mock.calls.length).toBeLessThanOrEqual(1);
    } finally {
      collect.mockRestore();
    }
  });

  it('count connections, transactions, messages, bytes, replies, failed commands, limits and handler time', async () => {
    const { port, server } = await startServer(
      class extends RequestHandler {
        override rcpt(address: string): void {
          if (address.startsWith('no@')) throw new SMTPError(550, [5, 1, 1], 'No such user');
        }
      },
      { metricsListen: '127.0.0.1:0', maxRecipients: 2 },
    );
    const client = await RawClient.inData(port);
    client.write('hello\r\n.\r\n');
    await client.reply();
    await client.command('MAIL FROM:<a@b.test>');
    await client.command('RCPT TO:<no@d.test>');
    await client.command('RCPT TO:<a@d.test>');
    await client.command('RCPT TO:<b@d.test>');
    expect(await client.command('RCPT TO:<c@d.test>')).toBe('452 4.5.3 Too many recipients\r\n');
    await client.command('RSET');
    await client.command('BOGUS');
    const response = await fetch(`http://127.0.0.1:${server.metricsAddress()?.port ?? 0}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    for (const line of [
      'sirocco_smtpd_connections 1',
      'sirocco_smtpd_connects_total 1',
      'sirocco_smtpd_messages_total 1',
      'sirocco_smtpd_message_bytes_total 7',
      'sirocco_smtpd_transactions_total{outcome="started"} 2',
      'sirocco_smtpd_transactions_total{outcome="completed"} 1',
      'sirocco_smtpd_transactions_total{outcome="aborted"} 1',
      'sirocco_smtpd_replies_total{code="550",enhanced="5.1.1"} 1',
      'sirocco_smtpd_replies_total{code="220",enhanced=""} 1',
      'sirocco_smtpd_failed_commands_total{command="RCPT"} 1',
      'sirocco_smtpd_failed_commands_total{command="unknown"} 1',
      'sirocco_smtpd_limit_deferrals_total{limit="tooManyRecipients"} 1',
      'sirocco_handler_duration_seconds_count{hook="rcpt"} 4',
      'sirocco_handler_duration_seconds_count{hook="data"} 1',
    ]) {
      expect(text).toContain(`${line}\n`);
    }
    // prom-client's default process and Node metrics, under their usual names.
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d+/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    expect((await fetch(`http://127.0.0.1:${server.metricsAddress()?.port ?? 0}/other`)).status).toBe(404);
  });

  it('answer /healthz, and /readyz until the server drains on close (503 "not ready: draining")', async () => {
    const { server, port } = await startServer(RequestHandler, { metricsListen: '127.0.0.1:0', closeTimeout: 5000 });
    const base = `http://127.0.0.1:${server.metricsAddress()?.port ?? 0}`;
    const get = async (path: string, method = 'GET'): Promise<[number, string]> => {
      const response = await fetch(`${base}${path}`, { method });
      return [response.status, await response.text()];
    };
    expect(await get('/healthz')).toEqual([200, 'ok\n']);
    expect(await get('/readyz')).toEqual([200, 'ready\n']);
    expect(await get('/readyz', 'POST')).toEqual([405, 'method not allowed\n']);
    // A transaction left open keeps the server draining for closeTimeout.
    const client = await RawClient.greeted(port);
    await client.command('EHLO client.test');
    await client.command('MAIL FROM:<a@b.test>');
    const closing = server.close();
    expect(await get('/readyz')).toEqual([503, 'not ready: draining\n']);
    expect(await get('/healthz')).toEqual([200, 'ok\n']);
    client.close();
    await closing;
  });

  it("say not ready while the outbound queue's folder cannot be written", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sirocco-ready-'));
    const { server } = await startServer(Deliver, { metricsListen: '127.0.0.1:0', queueDir: dir, dnsServers: ['127.0.0.1:9'] });
    const readyz = async (): Promise<[number, string]> => {
      const response = await fetch(`http://127.0.0.1:${server.metricsAddress()?.port ?? 0}/readyz`);
      return [response.status, await response.text()];
    };
    expect(await readyz()).toEqual([200, 'ready\n']);
    rmSync(dir, { recursive: true, force: true });
    expect(await readyz()).toEqual([503, `not ready: queue folder not writable: ${dir} (ENOENT)\n`]);
  });

  it('are off unless asked for, and metricsListen is checked', async () => {
    const { server } = await startServer();
    expect(server.metricsAddress()).toBeNull();
    await expect(startServer(RequestHandler, { metricsListen: 'localhost:port' })).rejects.toThrow(
      'Invalid settings: metricsListen: metricsListen must be port, host:port or [v6]:port',
    );
  });
});
