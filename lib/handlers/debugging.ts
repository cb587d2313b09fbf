import type { Writable } from 'node:stream';
import { IsOptional } from '../app/validators.js';
import { RequestHandler } from '../app/request-handler.js';
import { settingsSchema } from '../app/settings-schema.js';
import { clientLabel } from '../protocol/session-info.js';

/**
 * Settings of {@link Debugging}.
 *
 * @example
 * ```ts
 * new Application(Debugging, { debugStream: process.stderr } satisfies DebuggingSettings);
 * ```
 */
export class DebuggingSettings {
  /** Where to print; defaults to standard output. */
  @IsOptional()
  debugStream?: Writable;
}

/**
 * Prints every message: the envelope, then the body with `> ` before each line. For development
 * and for seeing what a client really sends.
 *
 * @example
 * ```ts
 * await new Application(Debugging, { debugStream: process.stderr }).listen(2525);
 * ```
 */
@settingsSchema(DebuggingSettings)
export class Debugging extends RequestHandler<DebuggingSettings> {
  override data(): void {
    const { session, envelope, body, id } = this.request;
    const lines = [
      `---------- MESSAGE ${id} FOLLOWS ----------`,
      `Peer: ${session.remoteAddress === '' ? clientLabel(session) : `${session.remoteAddress}:${session.remotePort}`}`,
      `HELO: ${session.heloName}${session.esmtp ? ' (ESMTP)' : ''}${session.secure ? ` ${session.tls?.protocol ?? 'TLS'}` : ''}${session.user === undefined ? '' : ` user=${session.user}`}`,
      `MAIL FROM: <${envelope.mailFrom}>${formatParams(envelope.mailParams)}`,
      ...envelope.rcptTos.map((to, i) => `RCPT TO: <${to}>${formatParams(envelope.rcptParams[i] ?? {})}`),
      '',
      ...splitLines(body.toString('utf8')).map((line) => `> ${line}`),
      `---------- END MESSAGE ${id} ----------`,
      '',
    ];
    (this.settings.debugStream ?? process.stdout).write(lines.join('\n'));
  }
}

function formatParams(params: Readonly<Record<string, string | true>>): string {
  return Object.entries(params)
    .map(([k, v]) => ` ${v === true ? k : `${k}=${v}`}`)
    .join('');
}

function splitLines(text: string): string[] {
  const lines = text.split('\r\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}
