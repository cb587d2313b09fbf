/**
 * One AUTH exchange (RFC 4954): while it is open, the client's lines are SASL responses, not
 * commands, and are never logged. The mechanisms themselves are pure state machines
 * (`protocol/sasl.ts`); this file asks the application's `authenticate` for its verdict, which may
 * be sync or async, and tells the session how the exchange ended.
 */
import type { AuthSlot, ClientLimits } from '../net/client-limits.js';
import type { ServerMetrics } from './metrics.js';
import type { Logger } from 'pino';
import { replyForError } from '../app/errors.js';
import { chain, type Maybe } from '../app/maybe.js';
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
import { clientLabel } from '../protocol/session-info.js';
import { endWith, SpanKinds, Traced } from '../app/tracing.js';

type Verdict = { readonly decision: AuthDecision } | { readonly refusal: Reply };

/** What every exchange of a connection is given: the connection itself. */
export interface AuthSetup {
  readonly settings: { readonly hostname: string; readonly authenticate?: Authenticator | undefined };
  readonly session: Session;
  readonly log: Logger;
  readonly metrics: ServerMetrics | null;
  /** AUTH failures per client address (`authFailuresPerIp`). */
  readonly limits: ClientLimits;
  /** Who the limits count (`null`: a local Unix socket client). */
  limitsClient(): string | null;
}

export class AuthExchange {
  readonly #mechanism: string;
  readonly #setup: AuthSetup;
  readonly #exchange: SaslExchange;
  readonly #authenticate: Authenticator;
  readonly #session: Session;
  readonly #log: Logger;
  #open = true;
  /** The running password check's place in the client's AUTH limit. */
  #slot: AuthSlot | undefined;
  /** The exchange's span, from the AUTH command to its last reply. */
  readonly #trace: Traced;

  /** `trace`: the session's span; the exchange's own span (`smtp.auth`) is its child. */
  constructor(mechanism: SaslMechanism, setup: AuthSetup, trace: Traced) {
    const authenticate = setup.settings.authenticate;
    if (authenticate === undefined) throw new Error('AUTH decided without an authenticator');
    this.#mechanism = mechanism;
    this.#setup = setup;
    this.#exchange = createExchange(mechanism, { hostname: setup.settings.hostname });
    this.#authenticate = authenticate;
    this.#session = setup.session;
    this.#log = setup.log;
    this.#trace = Traced.start('smtp.auth', SpanKinds.INTERNAL, trace);
    this.#trace.annotate(() => ({ 'sirocco.sasl.mechanism': mechanism }));
  }

  /** Whether the exchange goes on: the next line is the client's response. */
  get open(): boolean {
    return this.#open;
  }

  /** The AUTH command itself, with its initial response if it had one; `454 4.7.0` to a client past its failures. */
  start(initial: Buffer | undefined): Maybe<Decision> {
    return chain(this.#setup.limits.authAllowed(this.#setup.limitsClient()), (allowed) =>
      allowed ? this.#step(this.#exchange.start(initial)) : this.#overLimit(),
    );
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
        // A slot per check: parallel guesses from one client wait their turn within the limit.
        return chain(this.#setup.limits.authSlot(this.#setup.limitsClient()), (slot): Maybe<Decision> => {
          if (slot === null) return this.#overLimit();
          this.#slot = slot;
          const verdict = this.#verdict(step.credentials);
          return verdict instanceof Promise ? verdict.then(next) : next(verdict);
        });
      }
      case 'success':
        this.#open = false;
        this.#log.info({ user: step.user }, 'authenticated');
        this.#setup.metrics?.auth(this.#mechanism, true);
        this.#release();
        return this.#ended(this.#session.authenticated(step.user), 'success');
      case 'failure':
        if (!step.countsAsFailure) return this.#refuse(step.reply);
        this.#open = false;
        this.#log.info({ failures: this.#session.authFailures + 1 }, 'authentication failed');
        this.#setup.metrics?.auth(this.#mechanism, false);
        this.#slot?.failed();
        this.#slot = undefined;
        return this.#ended(this.#session.authFailed(step.reply), 'failure');
    }
  }

  /** Asks the application; its own `SMTPError` becomes the reply, any other error a 454. */
  #verdict(credentials: AuthCredentials): Maybe<Verdict> {
    const refused = (err: unknown): Verdict => ({ refusal: replyForError(err, REPLIES.authTemporary(), this.#log, 'authenticate') });
    try {
      const info = this.#session.info();
      const result = this.#trace.run(() => this.#authenticate(credentials, info));
      return result instanceof Promise ? result.then((decision) => ({ decision }), refused) : { decision: result };
    } catch (err) {
      return refused(err);
    }
  }

  /** The exchange ended without a verdict, or the client left: the check's slot is given back. */
  abandon(): void {
    this.#release();
    endWith(this.#trace, undefined, 'abandoned');
  }

  /** The running check's slot is given back. */
  #release(): void {
    this.#slot?.done();
    this.#slot = undefined;
  }

  /** The exchange's last decision: the span ends with its reply. */
  #ended(decision: Decision, outcome: string): Decision {
    endWith(this.#trace, decision.kind === 'reply' ? decision.reply : undefined, outcome);
    return decision;
  }

  #overLimit(): Decision {
    this.#open = false;
    this.#log.info({ client: clientLabel(this.#session.peer) }, 'AUTH refused: too many failures from this client');
    return this.#ended({ kind: 'reply', reply: REPLIES.authLimit() }, 'limited');
  }

  #refuse(reply: Reply): Decision {
    this.#release();
    this.#open = false;
    return this.#ended(this.#session.authRefused(reply), 'refused');
  }
}
