/** The JSON views of a caught message the inbox's HTTP API answers with. */
import type { CaughtMessage } from './caught.js';

/** What a list shows of a message. */
export function summary(m: CaughtMessage): Record<string, unknown> {
  return {
    id: m.id,
    mailFrom: m.mailFrom,
    rcptTos: m.rcptTos,
    from: m.from,
    to: m.to,
    subject: m.subject,
    receivedAt: m.receivedAt.toISOString(),
    size: m.raw.length,
    attachments: m.attachments.length,
  };
}

/** One message whole, but for its bytes (`/raw`) and its attachments' (`/attachments/{n}`). */
export function full(m: CaughtMessage): Record<string, unknown> {
  return {
    ...summary(m),
    cc: m.cc,
    session: {
      remoteAddress: m.session.remoteAddress,
      heloName: m.session.heloName,
      secure: m.session.secure,
      user: m.session.user ?? null,
    },
    headers: Object.fromEntries(m.headers),
    text: m.text,
    html: m.html ?? null,
    attachments: m.attachments.map((a, index) => ({
      index,
      filename: a.filename ?? null,
      contentType: a.contentType,
      size: a.content.length,
    })),
  };
}
