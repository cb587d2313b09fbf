import type { TLSSettings } from '../app/settings.js';
import type { Server as HttpServer } from 'node:http';
import { loadProm, serveMetrics, ServerMetrics } from './metrics.js';
import type { AddressInfo, Server, Socket } from 'node:net';
import { checkPort, Connections, Listeners, type LocalEnd, type UnixSocketOptions } from '../net/listeners.js';
import type { AnyServedApplication, HandlerService } from '../app/request-handler.js';
import type { ApplicationSettings } from '../app/settings.js';
import { REPLIES } from '../protocol/replies.js';
import { TrustedPeers } from '../app/trusted-peers.js';
import { Connection } from './connection.js';
import { sessionFeatures, type ConnectionContext } from './connection-context.js';
import { TLSConfig } from '../net/tls.js';
import { ClusterLimitStore, ClusterPrimary, isClusterWorker, onShutdownRequest, onTicketKeys, sharedTicketKeys } from './cluster.js';
import { ClientLimits } from '../net/client-limits.js';
import { MemoryLimitStore } from '../app/limit-store.js';

/**
 * Options of {@link SMTPServer.start}.
 *
 * @example
 * ```ts
 * server.bind(2525);
 * await server.start(4, { maxRestarts: 10 } satisfies StartOptions);
 * ```
 */
export interface StartOptions {
  /** How many times a dead worker is replaced, in all, before the primary gives up. Default 100. */
  readonly maxRestarts?: number;
}

/**
 * Serves an {@link Application} over SMTP: on one port (`listen`), on sockets you made
 * (`addSockets`), or from several processes sharing one port (`bind` then `start`).
 *
 * @example
 * ```ts
 * const server = new SMTPServer(new Application(Inbound));
 * await server.listen(2525, '127.0.0.1');
 * // ...
 * await server.close();
 * ```
 *
 * @example Many processes sharing one port
 * Tornado's `bind` then `start`:
 * ```ts
 * const server = new SMTPServer(app);
 * server.bind(2525);
 * await server.start(0); // one worker per CPU; in the primary this supervises, in a worker it serves
 * ```
 */
export class SMTPServer {
  /** The application served. */
  readonly application: AnyServedApplication;
  readonly #listeners: Listeners;
  readonly #connections = new Connections<Connection>();
  #bound: { port: number | string; address: string | undefined } | undefined;
  #primary: ClusterPrimary | undefined;
  #closing: Promise<void> | undefined;
  #service: HandlerService | undefined;
  #serviceStarted = false;

  readonly #settings: ApplicationSettings;
  #context: ConnectionContext;
  /** The TLS settings in use, for a rebuild with new ticket keys. */
  #tls: TLSSettings | undefined;
  /** The `/metrics` endpoint of this process, when it serves one. */
  #metricsServer: HttpServer | undefined;

  constructor(application: AnyServedApplication) {
    this.application = application;
    this.#listeners = new Listeners(application.logger, (socket, local) => this.#accept(socket, local));
    this.#settings = application.settings as ApplicationSettings;
    const tls = this.#settings.tls;
    const tlsConfig = tls === undefined ? undefined : this.#tlsConfig(tls);
    const xclient = new TrustedPeers(this.#settings.xclientFrom);
    this.#context = {
      app: application,
      settings: this.#settings,
      tls: tlsConfig,
      proxies: new TrustedPeers(this.#settings.proxyFrom),
      xclient,
      features: sessionFeatures(tlsConfig, this.#settings, xclient),
      metrics: null,
      limits: new ClientLimits(
        this.#settings.limitStore ?? (isClusterWorker() ? new ClusterLimitStore() : new MemoryLimitStore()),
        this.#settings,
        new TrustedPeers(this.#settings.limitExempt),
      ),
    };
  }

  /**
   * Metrics, when `metricsListen` is set: counted in this process, served here, or by the
   * cluster's primary when this is a worker of `start(n)`.
   */
  async #startMetrics(): Promise<void> {
    const listen = this.#settings.metricsListen;
    if (listen === undefined || this.#context.metrics !== null) return;
    const prom = await loadProm();
    const metrics = new ServerMetrics(prom);
    metrics.limitStore(this.#settings.limitStore);
    this.#context = { ...this.#context, metrics };
    if (isClusterWorker()) {
      // An AggregatorRegistry made in a worker answers the primary's requests, with this registry.
      new prom.AggregatorRegistry();
      prom.AggregatorRegistry.setRegistries([metrics.registry]);
      return;
    }
    const registry = metrics.registry;
    this.#metricsServer = await serveMetrics(
      listen,
      async () => ({ text: await registry.metrics(), contentType: registry.contentType }),
      this.application.logger,
      () => this.#notReady(),
    );
  }

  /**
   * Takes a new TLS key and certificate (and any other `tls` option) without a restart, for
   * certificates renewed every 60–90 days: new connections use them, connections already open
   * keep theirs. Throws, changing nothing, when the new ones cannot be used. Under `start(n)`,
   * a rolling restart (`restart()`, SIGHUP) is the way: each new worker reads its settings anew.
   *
   * @example
   * ```ts
   * process.on('SIGUSR2', () => server.reloadTLS({ key: readFileSync(keyFile), cert: readFileSync(certFile) }));
   * ```
   */
  reloadTLS(tls: TLSSettings): void {
    const config = this.#tlsConfig(tls);
    this.#context = { ...this.#context, tls: config, features: sessionFeatures(config, this.#settings, this.#context.xclient) };
    this.application.logger.info('TLS key and certificate reloaded');
  }

  /** A TLS configuration; in a worker of `start(n)`, with the session-ticket keys every worker shares. */
  #tlsConfig(tls: TLSSettings): TLSConfig {
    const keys = sharedTicketKeys();
    const config = new TLSConfig(keys === undefined ? tls : { ...tls, ticketKeys: keys }, this.#settings.requestClientCertificate);
    this.#tls = tls;
    return config;
  }

  /** The address the `/metrics` endpoint listens on, when this process serves it. */
  metricsAddress(): AddressInfo | null {
    const address = this.#metricsServer?.address();
    return typeof address === 'object' && address !== null ? address : null;
  }

  /**
   * Listens on `port` (0 picks a free one) and `address` (`''` or omitted: every interface, dual
   * stack); a string `port` is a Unix socket path, given `unix`'s mode and group (a socket file
   * left by a process that died is removed first; a live one is not). Resolves once listening.
   */
  async listen(port: number | string, address?: string, unix?: UnixSocketOptions): Promise<void> {
    checkPort(port);
    await this.#startMetrics();
    await this.#listeners.listen(port, address, unix);
    this.#startService();
  }

  /** Starts the handler class's own work (an outbound queue), once. */
  #startService(): void {
    if (this.#serviceStarted) return;
    this.#serviceStarted = true;
    this.application.services.hold();
    this.#service = this.application.handlerClass.startService(this.application);
  }

  /** Why `/readyz` says no: closing, or not (yet) listening; `undefined` when ready. */
  #notReady(): string | undefined | Promise<string | undefined> {
    if (this.#closing !== undefined) return 'draining';
    if (this.address() === null) return 'not listening';
    // The handlers' services (Deliver's queue folder …) say whether they could take a message.
    return this.application.services.notReady();
  }

  /** Serves connections from servers you created and made listen yourself. */
  addSockets(servers: readonly Server[]): void {
    this.#listeners.add(servers);
    this.#startService();
  }

  /** The address of the first listening socket (in a cluster primary: the workers' shared one). */
  address(): AddressInfo | string | null {
    return this.#primary?.address ?? this.#listeners.address();
  }

  /** Open connections in this process. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Records where {@link start} will listen (Tornado's `bind`). */
  bind(port: number | string, address?: string): void {
    checkPort(port);
    this.#bound = { port, address };
  }

  /**
   * Starts serving what {@link bind} named from `numProcesses` processes (0 or omitted: one per
   * CPU). In the primary process it forks the workers, replaces any that die (same task id) and
   * resolves once all listen; in a worker (the same script, run again by node:cluster) it listens.
   */
  async start(numProcesses = 0, options: StartOptions = {}): Promise<void> {
    const bound = this.#bound;
    if (bound === undefined) throw new Error('SMTPServer.start(): call bind() first');
    if (!Number.isInteger(numProcesses) || numProcesses < 0) {
      throw new RangeError(`SMTPServer.start(): numProcesses must be a whole number, got ${String(numProcesses)}`);
    }
    if (isClusterWorker()) {
      onTicketKeys(() => {
        const tls = this.#tls;
        if (tls !== undefined) this.#context = { ...this.#context, tls: this.#tlsConfig(tls) };
      });
      await this.listen(bound.port, bound.address);
      onShutdownRequest(() => this.close());
      return;
    }
    const listen = this.#settings.metricsListen;
    if (listen !== undefined) {
      // The workers count; the primary serves their sum.
      const prom = await loadProm();
      const aggregator = new prom.AggregatorRegistry();
      this.#metricsServer = await serveMetrics(
        listen,
        async () => ({ text: await aggregator.clusterMetrics(), contentType: aggregator.contentType }),
        this.application.logger,
        () => this.#notReady(),
      );
    }
    this.#primary = new ClusterPrimary(this.application.logger, options.maxRestarts ?? 100, this.#settings.ticketKeyRotation);
    await this.#primary.start(numProcesses);
    // SIGHUP to the primary: a rolling restart (new code, new certificates) without a refused connection.
    process.on('SIGHUP', () => void this.restart());
    // SIGTERM: every worker drains, then the primary exits; unless the program handles SIGTERM itself.
    process.on('SIGTERM', () => {
      if (process.listenerCount('SIGTERM') > 1) return;
      void this.close().then(() => process.exit(0));
    });
  }

  /**
   * In a cluster primary (`start(n)`): replaces every worker, one at a time, each new one
   * listening before the old one drains, so the port never refuses a connection. SIGHUP to the
   * primary does the same. Resolves once every worker was replaced.
   */
  restart(): Promise<void> {
    if (this.#primary === undefined) throw new Error('SMTPServer.restart(): only a cluster primary (after start()) restarts its workers');
    return this.#primary.restart();
  }

  /**
   * Stops accepting connections, lets open transactions finish (up to the `closeTimeout`
   * setting), then drops what is left. In a cluster primary, closes every worker the same way.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const stopped = this.#listeners.close();
    const primary = this.#primary?.stop();
    await this.#connections.drain(this.#settings.closeTimeout);
    await stopped;
    await primary;
    if (this.#serviceStarted) {
      try {
        await this.#service?.close();
      } finally {
        await this.application.services.release();
      }
    }
    const metricsServer = this.#metricsServer;
    if (metricsServer !== undefined) await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
  }

  /** Hears each connection close: one function for all of them. */
  readonly #closed = (connection: Connection): void => {
    this.#context.metrics?.disconnected();
    this.#connections.delete(connection);
  };

  #accept(socket: Socket, local: LocalEnd | undefined): void {
    const metrics = this.#context.metrics;
    metrics?.connected();
    const connection = new Connection(socket, this.#context, local, this.#closed);
    this.#connections.add(connection);
    if (this.#closing !== undefined) {
      metrics?.refused('shutdown');
      connection.turnAway(REPLIES.shuttingDown());
    } else if (this.#connections.size > this.#settings.maxConnections) {
      metrics?.refused('limit');
      connection.turnAway(REPLIES.tooManyConnections());
    } else {
      connection.start();
    }
  }
}
