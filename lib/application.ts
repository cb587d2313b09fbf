/**
 * The composition root of the Tornado layer: an {@link Application} joins a handler class and its
 * validated settings (lib/app) with the server that serves them (lib/server). It sits above both,
 * so neither layer needs to know of the other's upper half.
 */
import { BodyBudget } from './app/body-budget.js';
import { pino, type Logger } from 'pino';
import type { HandlerClass, ServedApplication } from './app/request-handler.js';
import { buildSettings } from './app/settings-schema.js';
import type { ApplicationSettings, SettingsInput } from './app/settings.js';
import { Services } from './app/services.js';
import { SMTPServer } from './server/smtp-server.js';

/**
 * Any application, whatever its settings type.
 *
 * @example
 * ```ts
 * const serve = (app: AnyApplication) => app.listen(2525);
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyApplication = Application<any>;

/**
 * A handler class with its validated, shared settings: what a server serves.
 *
 * Settings are checked when the Application is built: a bad one throws a {@link SettingsError}
 * naming every bad field. Keys Sirocco does not know are kept for the handlers
 * (`this.settings.domain`).
 *
 * @example
 * ```ts
 * class Inbound extends RequestHandler<{ domain: string }> {
 *   override async data() { console.log(this.request.body.toString()); }
 * }
 * const app = new Application(Inbound, { hostname: 'mx.example.com', domain: 'example.com' });
 * const server = await app.listen(2525);
 * ```
 */
export class Application<S extends object = Record<string, unknown>> implements ServedApplication<S> {
  /** The class instantiated once per mail transaction. */
  readonly handlerClass: HandlerClass<S>;
  /** Sirocco's settings and the user's own, validated. */
  readonly settings: ApplicationSettings & S;
  /** The logger every connection's child logger derives from. */
  readonly logger: Logger;
  /** The memory budget for bodies held whole (`bodyMemoryBudget`): what is held now, and how often it said no. */
  readonly bodyBudget: BodyBudget;
  /**
   * What the application keeps for its handlers: Relay's smarthost pool, Deliver's queue. Held
   * by every server that serves the application; closed when the last one closes.
   */
  readonly services = new Services();

  constructor(handlerClass: HandlerClass<S>, settings: SettingsInput & Partial<S> = {}) {
    if (typeof handlerClass !== 'function') {
      throw new TypeError('Application: handlerClass must be a RequestHandler subclass');
    }
    this.handlerClass = handlerClass;
    this.settings = buildSettings<S>(handlerClass, settings);
    this.logger = this.settings.logger ?? pino({ level: process.env.SIROCCO_LOG_LEVEL ?? 'info' });
    this.bodyBudget = new BodyBudget(this.settings.bodyMemoryBudget);
  }

  /**
   * Starts one server on `port` (and `address`: `''` or omitted for every interface, dual stack;
   * a path for a Unix socket); resolves once it listens. Short for
   * `new SMTPServer(app).listen(port, address)`.
   */
  async listen(port: number | string, address?: string): Promise<SMTPServer> {
    const server = new SMTPServer(this);
    await server.listen(port, address);
    return server;
  }
}
