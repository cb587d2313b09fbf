/**
 * Delivery status notifications (RFC 3464) in a multipart/report (RFC 6522): what a relay sends
 * back to the sender for recipients the next hop refused after the client was already told 250.
 * Pure: facts in, message bytes out.
 */
import { randomBytes } from 'node:crypto';

/** One recipient the next hop refused (or, for a `relayed` notice, took), with its reply. */
export interface Refusal {
  readonly recipient: string;
  /** The reply code, 400 to 599. */
  readonly code: number;
  /** The whole reply as the next hop sent it (code, enhanced code, text; lines joined). */
  readonly reply: string;
  /** The recipient as the original sender gave it (RCPT's ORCPT, RFC 3461 §4.2), reported as Original-Recipient. */
  readonly originalRecipient?: { readonly type: string; readonly address: string } | undefined;
  /** The host that answered for this recipient, when it is not {@link BounceFacts.remoteMta}. */
  readonly remoteMta?: string | undefined;
}

/** What a notification reports. */
export interface BounceFacts {
  /** This server's name (Reporting-MTA, and the From address's domain). */
  readonly reportingMta: string;
  /** The host that refused (Remote-MTA); each refusal may name its own. */
  readonly remoteMta?: string | undefined;
  /**
   * `failed` (the default): the message was given up for these recipients. `delayed`: it is
   * still being retried (RFC 3464 §2.3.3), and the notice says until when. `relayed`: it was
   * passed on to a host that does not offer DSN, for recipients whose NOTIFY asked for SUCCESS
   * (RFC 3461 §5.2.2): no other notice will come.
   */
  readonly action?: 'failed' | 'delayed' | 'relayed' | undefined;
  /** For a `delayed` notice: when the queue gives up. */
  readonly willRetryUntil?: Date | undefined;
  /** The original sender: the notification's only recipient. */
  readonly sender: string;
  readonly refusals: readonly Refusal[];
  /** When the message arrived. */
  readonly arrival: Date;
  /** The original message: its header section is returned, or all of it with `returnFull`. */
  readonly original: Buffer;
  /** Return the whole original (RET=FULL, RFC 3461 §4.3) instead of its header section. */
  readonly returnFull?: boolean;
  /** The sender's envelope id (ENVID, RFC 3461 §4.4), reported as Original-Envelope-Id. */
  readonly envid?: string | undefined;
  /** The original message's queue id, for the notification's Message-ID. */
  readonly id: string;
}

const SUBJECTS = {
  failed: 'Undelivered Mail Returned to Sender',
  delayed: 'Delayed Mail (still being retried)',
  relayed: 'Relayed Mail (no further notice will come)',
} as const;

/** The header section returned is cut at this many bytes. */
const MAX_RETURNED_HEADERS = 32 * 1024;

/** The part a person reads: what happened, and each recipient's last answer. */
function humanText(facts: BounceFacts, action: NonNullable<BounceFacts['action']>): string[] {
  const many = facts.refusals.length !== 1;
  const recipients = many ? 'some of its recipients' : 'one of its recipients';
  const explanation =
    action === 'relayed'
      ? [
          `Your message was passed on to the mail server of ${many ? 'these recipients' : 'this recipient'}, which does not report`,
          'deliveries: there will be no further notice of it. Its answer was:',
        ]
      : action === 'delayed'
        ? [
            `Your message could not be delivered yet to ${recipients}. It is still being tried` +
              (facts.willRetryUntil === undefined ? '.' : ` until ${rfc5322Date(facts.willRetryUntil)}.`),
            'No action is needed on your part. The last answer for each was:',
          ]
        : [`Your message could not be delivered to ${recipients}.`, `${many ? 'They were' : 'It was'} refused:`];
  return [
    `This is the mail system at ${facts.reportingMta}.`,
    '',
    ...explanation,
    '',
    ...facts.refusals.map((r) => {
      const host = r.remoteMta ?? facts.remoteMta;
      return `<${r.recipient}>: ${host === undefined ? '' : `${host} said: `}${oneLine(r.reply)}`;
    }),
  ];
}

/** The machine-readable part (RFC 3464): the per-message fields and one group per recipient. */
function statusFields(
  facts: BounceFacts,
  action: NonNullable<BounceFacts['action']>,
  addressType: string,
): { perMessage: string[]; perRecipient: string[] } {
  const delayed = action === 'delayed';
  const perMessage = [
    ...(facts.envid === undefined ? [] : [`Original-Envelope-Id: ${oneLine(facts.envid)}`]),
    `Reporting-MTA: dns; ${facts.reportingMta}`,
    `Arrival-Date: ${rfc5322Date(facts.arrival)}`,
  ];
  const perRecipient = facts.refusals.map((r) =>
    [
      ...(r.originalRecipient === undefined
        ? []
        : [`Original-Recipient: ${r.originalRecipient.type}; ${oneLine(r.originalRecipient.address)}`]),
      `Final-Recipient: ${addressType}; ${r.recipient}`,
      `Action: ${action}`,
      `Status: ${statusOf(r.code, r.reply)}`,
      ...((r.remoteMta ?? facts.remoteMta) === undefined ? [] : [`Remote-MTA: dns; ${r.remoteMta ?? facts.remoteMta}`]),
      ...(delayed && facts.willRetryUntil !== undefined ? [`Will-Retry-Until: ${rfc5322Date(facts.willRetryUntil)}`] : []),
      `Diagnostic-Code: smtp; ${oneLine(r.reply)}`,
    ].join('\r\n'),
  );
  return { perMessage, perRecipient };
}

/**
 * The notification as a message ready for the wire (CRLF line ends), to be sent from the null
 * reverse-path `<>` to {@link BounceFacts.sender}.
 */
export function bounceMessage(facts: BounceFacts): Buffer {
  const boundary = `=_sirocco_${randomBytes(12).toString('hex')}`;
  const utf8 = [facts.sender, ...facts.refusals.map((r) => r.recipient)].some((a) => /[^\x20-\x7e]/.test(a));
  const addressType = utf8 ? 'utf-8' : 'rfc822';
  const now = rfc5322Date(new Date());
  const action = facts.action ?? 'failed';
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${facts.reportingMta}>`,
    `To: <${facts.sender}>`,
    `Subject: ${SUBJECTS[action]}`,
    `Date: ${now}`,
    `Message-ID: <${facts.id}.bounce@${facts.reportingMta}>`,
    // RFC 3834 §5: automatic responses say so, and nobody answers them.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
  ];
  const human = humanText(facts, action);
  const { perMessage, perRecipient } = statusFields(facts, action, addressType);
  const parts = [
    ...head,
    '',
    'This is a delivery status notification in MIME format.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    ...human,
    '',
    `--${boundary}`,
    // RFC 6533 §6: a report naming UTF-8 addresses is a global one.
    `Content-Type: message/${utf8 ? 'global-' : ''}delivery-status`,
    '',
    [perMessage.join('\r\n'), ...perRecipient].join('\r\n\r\n'),
    '',
    `--${boundary}`,
    facts.returnFull === true
      ? `Content-Type: ${utf8 ? 'message/global' : 'message/rfc822'}`
      : `Content-Type: ${utf8 ? 'message/global-headers' : 'text/rfc822-headers'}`,
    '',
  ];
  const returned = facts.returnFull === true ? withFinalCrlf(facts.original) : headerSection(facts.original);
  return Buffer.concat([Buffer.from(`${parts.join('\r\n')}\r\n`), returned, Buffer.from(`\r\n--${boundary}--\r\n`)]);
}

/** The enhanced status code of a reply: its own when it has one of the right class, else the bare class. */
export function statusOf(code: number, reply: string): string {
  const klass = Math.floor(code / 100);
  const found = /^(?:\d{3}[ -])?([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(reply);
  return found !== null && Number(found[1]) === klass ? `${found[1]}.${found[2]}.${found[3]}` : `${klass}.0.0`;
}

/** A reply as one header-safe line: line breaks and other control characters become spaces. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

/** The original's header section, up to its blank line, at most {@link MAX_RETURNED_HEADERS}. */
function headerSection(original: Buffer): Buffer {
  const blank = original.indexOf('\r\n\r\n');
  const end = Math.min(blank === -1 ? original.length : blank + 2, MAX_RETURNED_HEADERS);
  return withFinalCrlf(original.subarray(0, end));
}

function withFinalCrlf(bytes: Buffer): Buffer {
  return bytes.length === 0 || bytes.subarray(-2).equals(Buffer.from('\r\n')) ? bytes : Buffer.concat([bytes, Buffer.from('\r\n')]);
}

function rfc5322Date(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}
