/**
 * What a relaying handler may pass on over DATA. A message received with `BODY=BINARYMIME` (RFC
 * 3030) may hold any octets, but the next hop is sent to with DATA, which carries lines: a bare
 * CR or LF would come out as CRLF, and so the message would change on the way. It is passed on
 * unchanged (as `BODY=8BITMIME`) when it is 8-bit text after all (RFC 2045 §2.8: no NUL, CR and
 * LF only as CRLF, lines of at most 998 octets); otherwise it is refused, `554 5.6.3`, before
 * anything reaches the next hop complete.
 */
import { SMTPError } from '../protocol/reply.js';

const CR = 0x0d;
const LF = 0x0a;
/** RFC 5321 §4.5.3.1.6: 1,000 octets a line, its CRLF counted. */
const MAX_LINE = 998;

/** The refusal: conversion required but not supported (RFC 3463 X.6.3). */
export function binaryRefusal(what: string): SMTPError {
  return new SMTPError(554, [5, 6, 3], 'Conversion required but not supported: binary content cannot be passed on', {
    logMessage: `BINARYMIME message refused: ${what}, which DATA to the next hop would change`,
  });
}

/**
 * Passes `source` on unchanged; when `binary` (the message came as BINARYMIME), fails with
 * {@link binaryRefusal} at the first octet that DATA could not carry as it is.
 */
export async function* passableOverData(source: AsyncIterable<Uint8Array>, binary: boolean): AsyncIterable<Uint8Array> {
  if (!binary) {
    yield* source;
    return;
  }
  let line = 0;
  let afterCR = false;
  for await (const part of source) {
    for (let i = 0; i < part.length; i++) {
      const byte = part[i];
      if (afterCR) {
        if (byte !== LF) throw binaryRefusal('a bare CR');
        afterCR = false;
        line = 0;
      } else if (byte === CR) {
        afterCR = true;
      } else if (byte === LF) {
        throw binaryRefusal('a bare LF');
      } else if (byte === 0) {
        throw binaryRefusal('a NUL octet');
      } else if (++line > MAX_LINE) {
        throw binaryRefusal(`a line longer than ${MAX_LINE} octets`);
      }
    }
    yield part;
  }
  if (afterCR) throw binaryRefusal('a bare CR');
}
