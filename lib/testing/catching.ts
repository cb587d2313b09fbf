/**
 * What the Controller adds around the handler class it serves: the faults of its `faults` at each
 * step, and every accepted message kept in its inbox. A subclass of the user's handler, and the
 * `onConnect` and `onHelo` hooks wrapped around the user's own.
 */
import type { ParsedMail } from 'mailparser';
import type { AnyHandlerClass, RequestHandler } from '../app/request-handler.js';
import type { ConnectHook, HeloHook, SettingsInput } from '../app/settings.js';
import type { EsmtpParams } from '../protocol/command.js';
import { SMTPError } from '../protocol/reply.js';
import type { Faults, FaultStep } from './faults.js';
import { caughtMessage } from './caught.js';
import type { Inbox } from './inbox.js';

/** The parsed view of the message kept (with the verdict on top, its headers include it). */
async function simpleParse(raw: Buffer): Promise<ParsedMail> {
  const { simpleParser } = await import('mailparser');
  return simpleParser(raw);
}

/** Runs `next` after the fault of `step`, if one strikes; synchronously when none does. */
function after<T>(faults: Faults, step: FaultStep, next: () => T | Promise<T>, recipient?: string): T | Promise<T> {
  const struck = faults.strike(step, recipient);
  return struck === undefined ? next() : struck.then(next);
}

/** The handler class with the faults and the inbox around each of its hooks. */
export function catchingHandler(Base: AnyHandlerClass, faults: Faults, inbox: Inbox | undefined): AnyHandlerClass {
  if (inbox !== undefined && Base.streaming) {
    throw new TypeError('Controller: the inbox keeps whole messages; give it a handler class without static streaming');
  }
  const Handler = Base as unknown as typeof RequestHandler;
  return class Caught extends Handler {
    override prepare(): void | Promise<void> {
      return after(faults, 'mail', () => super.prepare());
    }

    override rcpt(address: string, params: EsmtpParams): void | Promise<void> {
      return after(faults, 'rcpt', () => super.rcpt(address, params), address);
    }

    override beforeData(): void | Promise<void> {
      return after(faults, 'data', () => super.beforeData());
    }

    override async data(): Promise<void> {
      await after(faults, 'after-data', () => undefined);
      await super.data();
      if (inbox === undefined) return;
      const { request } = this;
      if (request.body.length > inbox.maxBytes) {
        throw new SMTPError(552, [5, 3, 4], `Message larger than the test inbox keeps (${inbox.maxBytes} bytes)`);
      }
      const { session } = request;
      // With mailAuth, the verdict goes on top of the message kept, as a mail store would keep it.
      const verdict = request.authentication?.header;
      const raw = verdict === undefined ? request.body : Buffer.concat([Buffer.from(verdict), request.body]);
      inbox.keep(
        caughtMessage(
          {
            id: request.id,
            mailFrom: request.mailFrom,
            rcptTos: [...request.rcptTos],
            receivedAt: request.receivedAt,
            session: { remoteAddress: session.remoteAddress, heloName: session.heloName, secure: session.secure, user: session.user },
            raw,
          },
          verdict === undefined ? await request.parse() : await simpleParse(raw),
        ),
      );
    }
  };
}

/** The application settings with the faults of `connect` and `helo` before the user's own hooks. */
export function catchingSettings(settings: SettingsInput | undefined, faults: Faults): SettingsInput {
  const own = settings ?? {};
  const onConnect: ConnectHook = (info) => after(faults, 'connect', () => own.onConnect?.(info));
  const onHelo: HeloHook = (name, info) => after(faults, 'helo', () => own.onHelo?.(name, info));
  return { ...own, onConnect, onHelo };
}
