/**
 * Debian's redis-server for the shared-limit tests: on loopback, on a port of its own, with a
 * temp folder and no persistence; stopped (or killed) by its pid. `available` says why not when
 * there is no redis-server on the machine (.ci/run installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './server.js';

const BINARY = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => spawnSync(p, ['--version']).status === 0);

/** Why the Redis tests cannot run here, or `undefined` when they can. */
export const redisMissing: string | undefined =
  BINARY === undefined ? "no redis-server on this machine (Debian's redis-server package; .ci/run installs it)" : undefined;

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

/** Whether the server answers PING (a refusal for want of the password counts: it answers). */
function answers(port: number, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : connect(port, '127.0.0.1');
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      socket.write('PING\r\n');
      socket.once('data', (d: Buffer) => {
        socket.destroy();
        resolve(/^(\+PONG|-NOAUTH)/.test(d.toString()));
      });
    });
    socket.once('error', () => resolve(false));
  });
}

/** TLS only (the certificate files of `makeCertificates`), and a password. */
export interface RedisOptions {
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
  readonly password?: string;
}

export async function startRedis(options: RedisOptions = {}): Promise<TestRedis> {
  if (BINARY === undefined) throw new Error(redisMissing);
  const binary = BINARY;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sirocco-redis-'));
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const tls = options.tls;
    const listen =
      tls === undefined
        ? ['--port', String(port)]
        : [
            '--port',
            '0',
            '--tls-port',
            String(port),
            '--tls-cert-file',
            tls.certFile,
            '--tls-key-file',
            tls.keyFile,
            '--tls-ca-cert-file',
            tls.caFile,
            '--tls-auth-clients',
            'no',
          ];
    const auth = options.password === undefined ? [] : ['--requirepass', options.password];
    const started = spawn(binary, [...listen, ...auth, '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    child = started;
    for (let i = 0; i < 100; i++) {
      if (await answers(port, options.tls !== undefined)) return;
      if (started.exitCode !== null) throw new Error(`redis-server exited with ${started.exitCode}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('redis-server did not answer within 5 s');
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running?.pid === undefined || running.exitCode !== null) return;
    const exited = new Promise((r) => running.once('exit', r));
    process.kill(running.pid, 'SIGTERM');
    await exited;
  };
  await start();
  return {
    port,
    url: `${options.tls === undefined ? 'redis' : 'rediss'}://${options.password === undefined ? '' : `:${options.password}@`}127.0.0.1:${port}`,
    stop,
    restart: start,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
