/**
 * Which command is allowed when (RFC 5321 §4.1.4, §3.1, §3.3; RFC 3207 §4; RFC 4954 §4): the
 * session's states and the one table of command order. Pure. A command refused here is
 * answered 503.
 */
import type { Verb } from './command.js';
import type { Reply } from './reply.js';
import { REPLIES } from './replies.js';

export enum SessionState {
  /** Greeting sent, no HELO/EHLO yet. */
  Connected,
  /** HELO/EHLO done, no transaction. */
  Greeted,
  /** MAIL accepted (or its hook running), no recipient yet. */
  InMail,
  /** At least one recipient accepted. */
  InRcpt,
  /** Between 354 and the end of the data, or inside a BDAT chunk. */
  InData,
  /** A BDAT chunk without LAST was read: more chunks, RSET or QUIT may follow (RFC 3030). */
  InChunks,
  /** Refused at connect: only QUIT is answered with anything but 503 (RFC 5321 §3.1). */
  Refused,
  /** QUIT, a 421, or the socket closed. */
  Closed,
}

const OPEN = [SessionState.Connected, SessionState.Greeted, SessionState.InMail, SessionState.InRcpt, SessionState.InChunks];

interface OrderRule {
  readonly allowedIn: readonly SessionState[];
  /** The 503 text when refused, by the state it was refused in. */
  readonly refuse: (state: SessionState) => string;
}

const anyOpen: OrderRule = { allowedIn: OPEN, refuse: () => 'session closed' };

/** Where each verb is allowed: the one table of command order. */
export const COMMAND_ORDER: Readonly<Record<Verb, OrderRule>> = {
  HELO: anyOpen,
  EHLO: anyOpen,
  LHLO: anyOpen,
  MAIL: {
    allowedIn: [SessionState.Greeted],
    refuse: (s) =>
      s === SessionState.Connected
        ? 'send HELO/EHLO first'
        : s === SessionState.InChunks
          ? 'BDAT chunks in progress'
          : 'nested MAIL command',
  },
  RCPT: {
    allowedIn: [SessionState.InMail, SessionState.InRcpt],
    refuse: (s) => (s === SessionState.InChunks ? 'BDAT chunks in progress' : 'need MAIL command'),
  },
  DATA: {
    allowedIn: [SessionState.InRcpt],
    refuse: (s) =>
      s === SessionState.InMail ? 'need RCPT command' : s === SessionState.InChunks ? 'DATA after BDAT' : 'need MAIL command',
  },
  // RFC 3030 §2: BDAT after RCPT, and again until LAST.
  BDAT: {
    allowedIn: [SessionState.InRcpt, SessionState.InChunks],
    refuse: (s) => (s === SessionState.InMail ? 'need RCPT command' : 'need MAIL command'),
  },
  RSET: anyOpen,
  NOOP: anyOpen,
  // RFC 5321 §3.1: a session refused at connect still waits for QUIT.
  QUIT: { allowedIn: [...OPEN, SessionState.Refused], refuse: () => 'session closed' },
  HELP: anyOpen,
  VRFY: anyOpen,
  EXPN: anyOpen,
  // RFC 3207 §4, RFC 4954 §4: neither during a mail transaction.
  STARTTLS: {
    allowedIn: [SessionState.Connected, SessionState.Greeted],
    refuse: () => 'STARTTLS not allowed during a mail transaction',
  },
  AUTH: {
    allowedIn: [SessionState.Greeted],
    refuse: (s) => (s === SessionState.Connected ? 'send EHLO first' : 'AUTH not allowed during a mail transaction'),
  },
  HTTP: { allowedIn: [...OPEN, SessionState.Refused], refuse: () => 'session closed' },
  // Postfix's XCLIENT_README: not inside a mail transaction.
  XCLIENT: { allowedIn: [SessionState.Connected, SessionState.Greeted], refuse: () => 'XCLIENT not allowed during a mail transaction' },
  XFORWARD: { allowedIn: [SessionState.Connected, SessionState.Greeted], refuse: () => 'XFORWARD not allowed during a mail transaction' },
};

/** The 503 reply when `verb` may not come in `state`, or `undefined` when it may; `lmtp` names LHLO as the greeting. */
export function checkOrder(state: SessionState, verb: Verb, lmtp = false): Reply | undefined {
  const rule = COMMAND_ORDER[verb];
  if (rule.allowedIn.includes(state)) return undefined;
  if (state === SessionState.Refused) return REPLIES.badSequence('connection refused, send QUIT');
  const why = rule.refuse(state);
  // An LMTP client greets with LHLO (RFC 2033 §4.1): the reply names it.
  return REPLIES.badSequence(lmtp ? why.replace(/HELO\/EHLO|EHLO/, 'LHLO') : why);
}

/** Whether a mail transaction is open (MAIL accepted, data not yet complete). */
export function inTransaction(state: SessionState): boolean {
  return state === SessionState.InMail || state === SessionState.InRcpt || state === SessionState.InData || state === SessionState.InChunks;
}
