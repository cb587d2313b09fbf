/**
 * The one write path: every byte the server sends a client goes through a connection's
 * `ReplyWriter`, the refusal of a connection over the limit included. Replies are collected and
 * written together once the input runs dry (RFC 2920 §3.2); a client that does not read them
 * makes the writer ask the connection to stop reading until the socket drains. Each reply from
 * the catalogue is logged under its name (`reply=tooManyRecipients`): refusals at `info`, the
 * rest at `debug`.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { formatReply, type Reply } from '../protocol/reply.js';
import type { ServerMetrics } from './metrics.js';
import { REPLIES } from '../protocol/replies.js';

const DROPPED = REPLIES.dropped();

/** How long a connection we ended may take to close before it is destroyed. */
const LINGER_MS = 5000;

export class ReplyWriter {
  #socket: Socket;
  readonly #log: Logger;
  readonly #debug: boolean;
  /** Called when something is written (the idle clock restarts) and when the socket drained. */
  readonly #onWrite: () => void;
  readonly #onDrain: () => void;
  readonly #metrics: ServerMetrics | null;
  /** Replies formatted and not yet written. */
  #out = '';
  #held = false;
  #waitingForDrain = false;
  #ending = false;
  /** Called when a hook's reply is a 421: the connection closes after it (RFC 5321 §3.8). */
  readonly #onClosing: () => void;

  constructor(
    socket: Socket,
    log: Logger,
    onWrite: () => void,
    onDrain: () => void,
    metrics: ServerMetrics | null = null,
    onClosing: () => void = () => undefined,
  ) {
    this.#metrics = metrics;
    this.#onClosing = onClosing;
    this.#socket = socket;
    this.#log = log;
    this.#debug = log.isLevelEnabled('debug');
    this.#onWrite = onWrite;
    this.#onDrain = onDrain;
  }

  /** Whether the client has not read what was written: reading waits until it has. */
  get waitingForDrain(): boolean {
    return this.#waitingForDrain;
  }

  /**
   * Queues a reply; it goes out with the next {@link flush}. A 421 (closing the channel) ends the
   * connection after it; the `dropped` reply (a hook threw `DropConnection`) is never sent: what
   * is queued goes out and the connection is dropped at once, as when a network fails.
   */
  add(reply: Reply): void {
    if (reply === DROPPED) {
      this.#log.info({ reply: 'dropped' }, 'connection dropped by a hook');
      this.flush();
      this.#ending = true;
      this.#socket.destroy();
      return;
    }
    this.#metrics?.reply(reply);
    if (reply.name !== undefined && (reply.code >= 400 || this.#debug)) {
      this.#log[reply.code >= 400 ? 'info' : 'debug']({ reply: reply.name, code: reply.code }, 'reply');
    }
    this.#out += formatReply(reply);
    if (reply.code === 421 && !this.#ending) this.#onClosing();
  }

  /**
   * Queues the first lines of a multi-line reply without its last (the greeting's `220-` teaser
   * before an early-talker wait): the reply goes on with the next {@link add}.
   */
  addOpening(reply: Reply): void {
    this.#out += formatReply(reply).replace(/^(\d{3}) /, '$1-');
  }

  /** Writes what is queued, unless a TLS handshake holds the output. */
  flush(): void {
    if (this.#out === '' || this.#held || this.#socket.destroyed) return;
    const data = this.#out;
    this.#out = '';
    this.#onWrite();
    if (!this.#socket.write(data) && !this.#waitingForDrain) {
      // The client does not read its replies: stop reading its commands until it does.
      this.#waitingForDrain = true;
      this.#socket.pause();
      this.#socket.once('drain', () => {
        this.#waitingForDrain = false;
        this.#onDrain();
      });
    }
  }

  /** A TLS handshake starts: nothing may be written until {@link resume}. */
  hold(): void {
    this.#held = true;
  }

  /** The handshake is done: writes go to the TLS socket from now on. */
  resume(socket: Socket): void {
    this.#socket = socket;
    this.#held = false;
  }

  /** Sends what is queued and `last`, then ends the socket, destroying it if it lingers. */
  end(...last: readonly Reply[]): void {
    this.#ending = true;
    for (const reply of last) this.add(reply);
    this.flush();
    const socket = this.#socket;
    socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  }
}
