/**
 * The opening of a connection, before any command: the per-client limits (`421 4.7.0` past
 * them), the early-talker wait (`greetDelay`, `554 5.5.1` to a client that speaks first), the
 * `onConnect` hook, and the banner or the refusal in its place (RFC 5321 §3.1); then HELO and
 * EHLO through the `onHelo` hook. It runs after a trusted proxy's PROXY header, so it judges the
 * client the header names.
 */
import type { Logger } from 'pino';
import { hookVerdict } from '../app/errors.js';
import type { ApplicationSettings } from '../app/settings.js';
import type { LineSplitter } from '../protocol/line-splitter.js';
import { REPLIES } from '../protocol/replies.js';
import type { Reply } from '../protocol/reply.js';
import type { Session } from '../protocol/session.js';
import { clientLabel } from '../protocol/session-info.js';
import type { Admission, ClientLimits } from '../net/client-limits.js';
import { asPending, type InputPump, type StepResult } from '../net/input-pump.js';
import type { ServerMetrics } from './metrics.js';
import type { ReplyWriter } from './reply-writer.js';

/**
 * What the opening needs of its connection; the connection is its own driver, so a connection
 * makes no object or closures for its opening.
 */
export interface OpeningDriver {
  readonly session: Session;
  readonly writer: ReplyWriter;
  readonly pump: InputPump;
  readonly lines: LineSplitter;
  readonly settings: ApplicationSettings;
  readonly limits: ClientLimits;
  /** Who the limits count (`null`: a local Unix socket client). */
  limitsClient(): string | null;
  readonly metrics: ServerMetrics | null;
  readonly log: Logger;
  /** Whether the connection has ended. */
  hasEnded(): boolean;
  /** Ends the connection with one last reply. */
  closeWith(reply: Reply): void;
}

export class Opening {
  readonly #d: OpeningDriver;
  /** This client's place in the per-client counts, given back when the connection ends. */
  #admission: Admission | null = null;

  constructor(driver: OpeningDriver) {
    this.#d = driver;
  }

  /** The connection ended: its place in the per-client counts is given back. */
  release(): void {
    this.#admission?.release();
    this.#admission = null;
  }

  /** The greeting: at once, or after `greetDelay` with early talkers turned away; then the banner. */
  welcome(): StepResult {
    const address = this.#d.limitsClient();
    return this.#d.pump.wait(this.#d.limits.admit(address), (admission) => {
      if ('refusal' in admission) {
        this.#d.log.info({ client: clientLabel(this.#d.session.peer), limit: admission.why }, 'client over a limit; closing');
        this.#d.metrics?.refused('limit');
        this.#d.closeWith(admission.refusal);
        return undefined;
      }
      if (this.#d.hasEnded()) {
        admission.release();
        return undefined;
      }
      this.#admission = admission;
      return asPending(this.#afterAdmission());
    });
  }

  /** The greeting of an admitted client: at once, or after `greetDelay`. */
  #afterAdmission(): StepResult {
    const delay = this.#d.settings.greetDelay;
    if (delay === 0) return this.#greet();
    // Early talkers (postscreen's pregreet test): the greeting waits; a client that spoke meanwhile is turned away.
    if (this.#d.settings.greetTeaser) this.#d.writer.addOpening(REPLIES.greeting(this.#d.settings.hostname));
    const waited = new Promise<void>((resolve) => setTimeout(resolve, delay));
    return this.#d.pump.wait(
      waited,
      () => {
        if (this.#d.lines.buffered === 0) return asPending(this.#greet());
        this.#d.log.info({ bytes: this.#d.lines.buffered }, 'client spoke before the greeting; closing');
        this.#d.metrics?.refused('early_talker');
        // A teaser opened a multi-line 220: it is ended, so the refusal stands as a reply of its own.
        if (this.#d.settings.greetTeaser) this.#d.writer.add(REPLIES.greeting(this.#d.settings.hostname));
        this.#d.closeWith(REPLIES.earlyTalker());
        return undefined;
      },
      false,
    );
  }

  /** HELO/EHLO, through the `onHelo` hook when there is one. */
  hello(esmtp: boolean, domain: string): Promise<void> | undefined {
    const d = this.#d;
    const hook = d.settings.onHelo;
    if (hook === undefined) {
      d.writer.add(d.session.hello(esmtp, domain));
      return undefined;
    }
    const info = d.session.info();
    const verdict = hookVerdict(() => hook(domain, info), REPLIES.heloRefused(), REPLIES.localError(), d.log, 'onHelo');
    return d.pump.wait(verdict, (refusal) => {
      d.writer.add(d.session.hello(esmtp, domain, refusal));
      return undefined;
    });
  }

  /** The `onConnect` hook, then the banner or the hook's refusal instead of it (RFC 5321 §3.1). */
  #greet(): StepResult {
    const hook = this.#d.settings.onConnect;
    if (hook === undefined) {
      this.#d.writer.add(REPLIES.greeting(this.#d.settings.hostname));
      return undefined;
    }
    const info = this.#d.session.info();
    const verdict = hookVerdict(() => hook(info), REPLIES.connectionRefused(), REPLIES.serviceUnavailable(), this.#d.log, 'onConnect');
    return this.#d.pump.wait(verdict, (refusal) => {
      if (refusal === undefined) {
        this.#d.writer.add(REPLIES.greeting(this.#d.settings.hostname));
      } else if (refusal.code >= 500) {
        this.#d.session.refuseConnection();
        this.#d.metrics?.refused('on_connect');
        this.#d.writer.add(refusal);
      } else {
        this.#d.closeWith(refusal);
      }
      return undefined;
    });
  }
}
