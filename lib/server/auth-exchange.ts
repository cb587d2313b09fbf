/**
 * One AUTH exchange (RFC 4954): while it is open, the client's lines are SASL responses, not
 * commands, and are never logged. The mechanisms themselves are pure state machines
 * (`protocol/sasl.ts`); this file asks the application's `authenticate` for its verdict, which may
 * be sync or async, and tells the session how the exchange ended.
 */
import type { ServerMetrics } from './metrics.js';
import type { Logger } from 'pino';
import { replyForError } from '../app/errors.js';
import type { Maybe } from '../app/maybe.js';
import type { Authenticator } from '../app/settings.js';
import type { LineEvent } from '../protocol/line-splitter.js';
import { REPLIES } from '../protocol/replies.js';
import type { Reply } from '../protocol/reply.js';
import {
  createExchange,
  decodeBase64,
  type AuthCredentials,
  type AuthDecision,
  type SaslExchange,
  type SaslMechanism,
  type SaslStep,
} from '../protocol/sasl.js';
import type { Decision, Session } from '../protocol/session.js';

type Verdict = { readonly decision: AuthDecision } | { readonly refusal: Reply };

export class AuthExchange {
  readonly #mechanism: string;
  readonly #metrics: ServerMetrics | null;
  readonly #failed: () => void;
  readonly #exchange: SaslExchange;
  readonly #authenticate: Authenticator;
  readonly #session: Session;
  readonly #log: Logger;
  #open = true;

  constructor(
    mechanism: SaslMechanism,
    hostname: string,
    authenticate: Authenticator,
    session: Session,
    log: Logger,
    metrics: ServerMetrics | null = null,
    failed: () => void = () => undefined,
  ) {
    this.#mechanism = mechanism;
    this.#metrics = metrics;
    this.#failed = failed;
    this.#exchange = createExchange(mechanism, { hostname });
    this.#authenticate = authenticate;
    this.#session = session;
    this.#log = log;
  }

  /** Whether the exchange goes on: the next line is the client's response. */
  get open(): boolean {
    return this.#open;
  }

  /** The AUTH command itself, with its initial response if it had one. */
  start(initial: Buffer | undefined): Maybe<Decision> {
    return this.#step(this.#exchange.start(initial));
  }

  /** A client line inside the exchange. */
  line(event: LineEvent): Maybe<Decision> {
    if (event.kind === 'tooLong') return this.#refuse(REPLIES.authLineTooLong());
    const text = event.line.toString('latin1');
    if (text === '*') return this.#refuse(REPLIES.authCancelled());
    const data = decodeBase64(text);
    if (data === undefined) return this.#refuse(REPLIES.authBadBase64());
    return this.#step(this.#exchange.respond(data));
  }

  #step(step: SaslStep): Maybe<Decision> {
    switch (step.kind) {
      case 'challenge':
        return { kind: 'reply', reply: REPLIES.authChallenge(step.data) };
      case 'credentials': {
        const next = (verdict: Verdict): Maybe<Decision> =>
          'refusal' in verdict ? this.#refuse(verdict.refusal) : this.#step(this.#exchange.decide(verdict.decision));
        const verdict = this.#verdict(step.credentials);
        return verdict instanceof Promise ? verdict.then(next) : next(verdict);
      }
      case 'success':
        this.#open = false;
        this.#log.info({ user: step.user }, 'authenticated');
        this.#metrics?.auth(this.#mechanism, true);
        return this.#session.authenticated(step.user);
      case 'failure':
        if (!step.countsAsFailure) return this.#refuse(step.reply);
        this.#open = false;
        this.#log.info({ failures: this.#session.authFailures + 1 }, 'authentication failed');
        this.#metrics?.auth(this.#mechanism, false);
        this.#failed();
        return this.#session.authFailed(step.reply);
    }
  }

  /** Asks the application; its own `SMTPError` becomes the reply, any other error a 454. */
  #verdict(credentials: AuthCredentials): Maybe<Verdict> {
    const refused = (err: unknown): Verdict => ({ refusal: replyForError(err, REPLIES.authTemporary(), this.#log, 'authenticate') });
    try {
      const result = this.#authenticate(credentials, this.#session.info());
      return result instanceof Promise ? result.then((decision) => ({ decision }), refused) : { decision: result };
    } catch (err) {
      return refused(err);
    }
  }

  #refuse(reply: Reply): Decision {
    this.#open = false;
    return this.#session.authRefused(reply);
  }
}
