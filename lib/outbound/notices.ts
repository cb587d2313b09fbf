/**
 * The notices a queued message's sender gets (RFC 3461 §4.1, RFC 3464): which recipients a notice
 * names under their NOTIFY parameters, and the notice itself. Pure: a message's state and its
 * original bytes in, the notice's bytes out.
 */
import { bounceMessage, type Refusal } from './bounce.js';
import type { QueueEntry, QueuedRecipient } from './spool.js';

/** A failed delivery, one still being retried, or one passed on to a host without DSN. */
export type NoticeKind = 'failed' | 'delayed' | 'relayed';

/** Per kind: the NOTIFY keyword that asks for it, and the code reported when a recipient has no reply. */
const KINDS = {
  failed: { notify: 'FAILURE', code: 550 },
  delayed: { notify: 'DELAY', code: 451 },
  relayed: { notify: 'SUCCESS', code: 250 },
} as const;

/**
 * The recipients a notice names: those whose NOTIFY asks for it. Without NOTIFY a recipient
 * gets failure and delay notices (RFC 3461 §4.1), never success ones.
 */
export function recipientsToTell(recipients: readonly QueuedRecipient[], kind: NoticeKind): QueuedRecipient[] {
  const want = KINDS[kind].notify;
  return recipients.filter((r) =>
    r.dsn?.notify === undefined ? kind !== 'relayed' : r.dsn.notify !== 'NEVER' && r.dsn.notify.includes(want),
  );
}

/** The notice for `told` (see {@link recipientsToTell}), from `reportingMta`, to the message's sender. */
export function noticeMessage(
  entry: QueueEntry,
  told: readonly QueuedRecipient[],
  kind: NoticeKind,
  original: Buffer,
  reportingMta: string,
  lifetimeSeconds: number,
): Buffer {
  const refusals: Refusal[] = told.map((r) => ({
    recipient: r.address,
    code: r.code ?? KINDS[kind].code,
    reply: withStatus(r),
    remoteMta: r.exchanger,
    originalRecipient: r.dsn?.orcpt,
  }));
  return bounceMessage({
    reportingMta,
    sender: entry.from,
    refusals,
    arrival: new Date(entry.queuedAt),
    original,
    returnFull: entry.ret === 'FULL' && kind === 'failed',
    envid: entry.envid,
    id: entry.id,
    action: kind,
    willRetryUntil: new Date(entry.queuedAt + lifetimeSeconds * 1000),
  });
}

/** A recipient's last reply for a notice, with its enhanced status in front when the reply had none. */
function withStatus(r: QueuedRecipient): string {
  const reply = r.reply ?? '';
  if (/^\d{3}[ -]\d\.\d{1,3}\.\d{1,3}\b/.test(reply)) return reply;
  const code = r.code ?? 550;
  return `${code} ${r.status ?? `${Math.floor(code / 100)}.0.0`} ${reply.replace(/^\d{3}[ -]/, '')}`;
}
