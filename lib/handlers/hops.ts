/**
 * Loop detection (RFC 5321 §6.3): a message that already carries more `Received` fields than a
 * route of this length could have is going round in circles (an MX pointing back, two relays
 * forwarding to each other) and is refused instead of being sent on again. A message that already
 * passed through this server twice (two `Received` fields `by <hostname> (Sirocco)`) is refused
 * at once: a relay streams each message on while it arrives, so a loop between relays holds a
 * connection per hop, and waiting for 50 hops would hold 50 (or wait for ever on a pool's limit).
 * Once is allowed: a content filter that gives the message back is not a loop.
 */
import { SMTPError } from '../protocol/reply.js';

/** How much of the message is searched for its header section's end. */
const HEAD_LIMIT = 64 * 1024;

/** The refusal: `554 5.4.6` (routing loop detected, RFC 3463). */
export function tooManyHops(count: number, max: number): SMTPError {
  return new SMTPError(554, [5, 4, 6], 'Too many hops: routing loop detected', {
    logMessage: `message refused: ${count} Received fields, more than ${max}`,
  });
}

/** How many `Received` fields this server (named `hostname`) wrote into a header section. */
export function countOwn(head: string, hostname: string): number {
  const mark = `\tby ${hostname.toLowerCase()} (sirocco) `;
  let n = 0;
  const lower = head.toLowerCase();
  for (let at = lower.indexOf(mark); at !== -1; at = lower.indexOf(mark, at + mark.length)) n++;
  return n;
}

/** Passages through this server a message may already show: the next one is a loop. */
const MAX_OWN = 1;

/** How many `Received` fields a header section (or its first part) has. */
export function countReceived(head: string): number {
  return head.match(/(?:^|\n)received[ \t]*:/gi)?.length ?? 0;
}

/**
 * Passes `source` on unchanged, after checking its header section (at most the first 64 KiB):
 * more than `max` `Received` fields fail it with {@link tooManyHops}.
 */
export async function* checkedHops(source: AsyncIterable<Uint8Array>, max: number, hostname?: string): AsyncIterable<Uint8Array> {
  const check = (head: string): void => {
    const count = countReceived(head);
    if (count > max) throw tooManyHops(count, max);
    const own = hostname === undefined ? 0 : countOwn(head, hostname);
    if (own > MAX_OWN) {
      throw new SMTPError(554, [5, 4, 6], 'Too many hops: routing loop detected', {
        logMessage: `message refused: it passed through ${hostname ?? ''} ${own} times already (a mail loop)`,
      });
    }
  };
  const held: Uint8Array[] = [];
  let head = '';
  let checked = false;
  for await (const part of source) {
    if (checked) {
      yield part;
      continue;
    }
    held.push(part);
    head += Buffer.from(part.buffer, part.byteOffset, part.byteLength).toString('latin1');
    const end = head.search(/\r?\n\r?\n/);
    if (end === -1 && head.length < HEAD_LIMIT) continue;
    check(end === -1 ? head : head.slice(0, end));
    checked = true;
    yield* held;
    held.length = 0;
  }
  if (!checked) {
    check(head);
    yield* held;
  }
}
