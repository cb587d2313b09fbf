/**
 * `sirocco/testing`: a mail catcher for your test suite. The {@link Controller} runs a server
 * beside your tests, keeps what arrives in an {@link Inbox} you can wait on and query, and injects
 * {@link Faults} at any step; {@link InboxStore} serves that inbox over POP3.
 *
 * @example
 * ```ts
 * import { RequestHandler } from 'sirocco';
 * import { Controller } from 'sirocco/testing';
 *
 * const controller = new Controller(RequestHandler, { inbox: true });
 * await controller.start();
 * // … the code under test sends mail to controller.port …
 * const message = await controller.inbox.waitFor({ to: 'bob@example.com' });
 * await controller.stop();
 * ```
 * @module sirocco/testing
 */
export {
  Controller,
  UnixSocketController,
  ControllerTimeoutError,
  type ControllerOptions,
  type UnixSocketControllerOptions,
} from '../testing/controller.js';
export { Inbox, InboxView, InboxTimeoutError, type InboxOptions } from '../testing/inbox.js';
export type { CaughtMessage, CaughtAttachment } from '../testing/caught.js';
export type { InboxQuery, Matcher } from '../testing/inbox-query.js';
export { Faults, type Fault, type FaultListing, type FaultStep, type RandomFaults } from '../testing/faults.js';
export { InboxStore } from '../testing/inbox-store.js';
export { InboxDirectory } from '../testing/inbox-dir.js';
export { InboxHttpServer, type InboxHttpOptions } from '../testing/inbox-http.js';
export type { ReleaseTarget } from '../testing/inbox-release.js';
