/**
 * The session state machine: which command is allowed when (RFC 5321 §4.1.4, §3.3). Pure.
 * This is the one place that decides command order; a command refused here is answered 503.
 */
import type { Verb } from './command.js';
import type { Reply } from './reply.js';
import { REPLIES } from './replies.js';

export enum SessionState {
  /** Greeting sent, no HELO/EHLO yet. */
  Connected,
  /** HELO/EHLO done, no transaction. */
  Greeted,
  /** MAIL accepted, no recipient yet. */
  InMail,
  /** At least one recipient accepted. */
  InRcpt,
  /** Between 354 and the end of the data. */
  InData,
  /** QUIT, a 421, or the socket closed. */
  Closed,
}

const ANY_OPEN = [SessionState.Connected, SessionState.Greeted, SessionState.InMail, SessionState.InRcpt];

interface OrderRule {
  readonly allowedIn: readonly SessionState[];
  /** The 503 text when refused, by the state it was refused in. */
  readonly refuse: (state: SessionState) => string;
}

/** Where each verb is allowed. Verbs allowed everywhere before the data are not listed apart. */
export const COMMAND_ORDER: Readonly<Record<Verb, OrderRule>> = {
  HELO: { allowedIn: ANY_OPEN, refuse: () => 'session closed' },
  EHLO: { allowedIn: ANY_OPEN, refuse: () => 'session closed' },
  MAIL: {
    allowedIn: [SessionState.Greeted],
    refuse: (s) => (s === SessionState.Connected ? 'send HELO/EHLO first' : 'nested MAIL command'),
  },
  RCPT: { allowedIn: [SessionState.InMail, SessionState.InRcpt], refuse: () => 'need MAIL command' },
  DATA: {
    allowedIn: [SessionState.InRcpt],
    refuse: (s) => (s === SessionState.InMail ? 'need RCPT command' : 'need MAIL command'),
  },
  RSET: { allowedIn: ANY_OPEN, refuse: () => 'session closed' },
  NOOP: { allowedIn: ANY_OPEN, refuse: () => 'session closed' },
  QUIT: { allowedIn: ANY_OPEN, refuse: () => 'session closed' },
  HELP: { allowedIn: ANY_OPEN, refuse: () => 'session closed' },
  VRFY: { allowedIn: ANY_OPEN, refuse: () => 'session closed' },
  EXPN: { allowedIn: ANY_OPEN, refuse: () => 'session closed' },
  // RFC 3207 §4, RFC 4954 §4: neither during a mail transaction.
  STARTTLS: {
    allowedIn: [SessionState.Connected, SessionState.Greeted],
    refuse: () => 'STARTTLS not allowed during a mail transaction',
  },
  AUTH: {
    allowedIn: [SessionState.Greeted],
    refuse: (s) => (s === SessionState.Connected ? 'send EHLO first' : 'AUTH not allowed during a mail transaction'),
  },
  HTTP: { allowedIn: ANY_OPEN, refuse: () => 'session closed' },
};

/** The 503 reply when `verb` may not come in `state`, or `undefined` when it may. */
export function checkOrder(state: SessionState, verb: Verb): Reply | undefined {
  const rule = COMMAND_ORDER[verb];
  return rule.allowedIn.includes(state) ? undefined : REPLIES.badSequence(rule.refuse(state));
}

/** Whether a mail transaction is open (MAIL accepted, data not yet complete). */
export function inTransaction(state: SessionState): boolean {
  return state === SessionState.InMail || state === SessionState.InRcpt || state === SessionState.InData;
}
