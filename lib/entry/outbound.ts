/**
 * `sirocco/outbound`: sending mail on. {@link Deliver} (a small MTA with a durable queue),
 * {@link Relay} (to a smarthost), {@link sendDirect} (one message to the recipients' exchangers)
 * and the {@link OutboundQueue} itself. Kept apart from the server core, so that a server that
 * only receives does not load them.
 *
 * @example
 * ```ts
 * import { Application } from 'sirocco';
 * import { Deliver } from 'sirocco/outbound';
 *
 * await new Application(Deliver, { hostname: 'mta.example.com', queueDir: '/var/spool/sirocco' }).listen(587);
 * ```
 * @module sirocco/outbound
 */
export { Deliver, DeliverSettings, deliveryQueue } from '../handlers/deliver.js';
export { OutboundQueue, type NewMessage } from '../outbound/queue.js';
export type { ListedMessage, QueueEntry, QueuedRecipient } from '../outbound/spool.js';
export type { UnreadableEntry } from '../outbound/queue-entry.js';
export { sendDirect, type DirectMessage, type DirectReport } from '../outbound/direct.js';
export { DkimSigner, DKIM_SIGNED_HEADERS, type DkimKey } from '../auth/sign.js';
export type { RecipientResult } from '../outbound/client.js';
export type { SentTlsReport } from '../outbound/tls-reporter.js';
export { Relay, RelaySettings } from '../handlers/relay.js';
export { RelayAccessSettings, inDomains } from '../handlers/relay-access.js';
