import { RequestHandler } from '../app/request-handler.js';

/**
 * Accepts every message and keeps nothing: for load tests and for clients that must see a 250.
 *
 * @example
 * ```ts
 * await new Application(Sink).listen(2525);
 * ```
 */
export class Sink extends RequestHandler {
  override data(): void {}
}
