/**
 * Release from the inbox's HTTP API: a caught message sent on to a real SMTP server through
 * nodemailer, its bytes unchanged, to a fixed target or to the one the request names.
 */
import type { CaughtMessage } from './caught.js';
import { fieldsOf, HttpProblem } from './inbox-requests.js';

/**
 * Where a release sends: the SMTP server a caught message goes on to.
 *
 * @example
 * ```ts
 * await new InboxHttpServer(controller.inbox).listen({ releaseTo: { host: '127.0.0.1', port: 2525 } satisfies ReleaseTarget });
 * ```
 */
export interface ReleaseTarget {
  /** The SMTP server's host name or address. */
  readonly host: string;
  /** Its port. */
  readonly port: number;
}

/**
 * Sends `message` to its own recipients, or to `to` from the body; to `fixed` when set (then the
 * body may name no server), else to the body's `host` and `port`. Resolves to the JSON answered.
 */
export async function release(message: CaughtMessage, body: unknown, fixed: ReleaseTarget | undefined): Promise<Record<string, unknown>> {
  const given = fieldsOf(body, ['to', 'host', 'port']);
  const to = given.to ?? message.rcptTos;
  if (!Array.isArray(to) || to.length === 0 || !to.every((r) => typeof r === 'string' && /^[^\s<>@]+@[^\s<>@]+$/.test(r)))
    throw new HttpProblem(400, 'field to must be a list of one or more addresses', 'to');
  if (fixed !== undefined && (given.host !== undefined || given.port !== undefined))
    throw new HttpProblem(
      400,
      'this server releases only to its own target; give no host or port',
      given.host === undefined ? 'port' : 'host',
    );
  const host = fixed?.host ?? given.host;
  const port = fixed?.port ?? given.port;
  if (typeof host !== 'string' || host === '') throw new HttpProblem(400, 'field host is required (no release target is set)', 'host');
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new HttpProblem(400, 'field port must be a whole number from 1 to 65535', 'port');
  const { default: nodemailer } = await import('nodemailer');
  const transport = nodemailer.createTransport({
    host,
    port,
    secure: false,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  try {
    const sent = await transport.sendMail({ envelope: { from: message.mailFrom, to: to as string[] }, raw: message.raw });
    return { released: message.id, host, port, to, response: sent.response };
  } catch (err) {
    throw new HttpProblem(502, `the release to ${host}:${port} failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    transport.close();
  }
}
