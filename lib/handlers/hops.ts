/**
 * Loop detection (RFC 5321 §6.3): a message that already carries more `Received` fields than a
 * route of this length could have is going round in circles (an MX pointing back, two relays
 * forwarding to each other) and is refused instead of being sent on again.
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

/** How many `Received` fields a header section (or its first part) has. */
export function countReceived(head: string): number {
  return head.match(/(?:^|\n)received[ \t]*:/gi)?.length ?? 0;
}

/**
 * Passes `source` on unchanged, after checking its header section (at most the first 64 KiB):
 * more than `max` `Received` fields fail it with {@link tooManyHops}.
 */
export async function* checkedHops(source: AsyncIterable<Uint8Array>, max: number): AsyncIterable<Uint8Array> {
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
    const count = countReceived(end === -1 ? head : head.slice(0, end));
    if (count > max) throw tooManyHops(count, max);
    checked = true;
    yield* held;
    held.length = 0;
  }
  if (!checked) {
    const count = countReceived(head);
    if (count > max) throw tooManyHops(count, max);
    yield* held;
  }
}
