/**
 * SMTP's replies on the connection kit's one write path ({@link Output}): every byte the server
 * sends an SMTP client goes through a connection's `ReplyWriter`, the refusal of a connection over
 * the limit included. It formats replies, logs each reply from the catalogue under its name
 * (`reply=tooManyRecipients`: refusals at `info`, the rest at `debug`), and carries out the
 * replies that end a connection (a 421, a hook's `DropConnection`).
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { Output, type OutputEvents } from '../net/output.js';
import { formatReply, type Reply } from '../protocol/reply.js';
import { transcriptReply } from '../protocol/transcript.js';
import type { ServerMetrics } from './metrics.js';
import { REPLIES } from '../protocol/replies.js';

const DROPPED = REPLIES.dropped();

/** What the writer tells its connection: the output's events, and a 421 that closes it. */
export interface WriterOwner extends OutputEvents {
  /** A hook's reply was a 421: the connection closes after it (RFC 5321 §3.8). */
  closing(): void;
  /** The connection's logger (read only when something is logged). */
  readonly log: Logger;
}

export class ReplyWriter {
  readonly #output: Output;
  /** At `debug`, every reply goes into the session's transcript; at `trace`, every write's size too. */
  readonly #debug: boolean;
  readonly #trace: boolean;
  readonly #metrics: ServerMetrics | null;
  #ending = false;
  readonly #owner: WriterOwner;

  /**
   * `owner`: the connection itself, so a connection makes no closures for its writer;
   * `transcript`: the most detailed of `debug` and `trace` that the log level lets through.
   */
  constructor(socket: Socket, owner: WriterOwner, metrics: ServerMetrics | null = null, transcript: 'debug' | 'trace' | null = null) {
    this.#output = new Output(socket, owner);
    this.#metrics = metrics;
    this.#owner = owner;
    this.#debug = transcript !== null;
    this.#trace = transcript === 'trace';
  }

  /** Whether the client has not read what was written: reading waits until it has. */
  get waitingForDrain(): boolean {
    return this.#output.waitingForDrain;
  }

  /** How much is queued and not yet written. */
  get queued(): number {
    return this.#output.queued;
  }

  /**
   * Queues a reply; it goes out with the next {@link flush}. A 421 (closing the channel) ends the
   * connection after it; the `dropped` reply (a hook threw `DropConnection`) is never sent: what
   * is queued goes out and the connection is dropped at once, as when a network fails.
   */
  add(reply: Reply): void {
    if (reply === DROPPED) {
      this.#owner.log.info({ reply: 'dropped' }, 'connection dropped by a hook');
      this.flush();
      this.#ending = true;
      this.#output.socket.destroy();
      return;
    }
    this.#metrics?.reply(reply);
    const text = formatReply(reply);
    if (reply.name !== undefined && reply.code >= 400) this.#owner.log.info({ reply: reply.name, code: reply.code }, 'reply');
    if (this.#debug) this.#owner.log.debug({ reply: reply.name, code: reply.code, line: transcriptReply(text) }, 'S:');
    this.#output.queue(text);
    if (reply.code === 421 && !this.#ending) this.#owner.closing();
  }

  /**
   * Queues the first lines of a multi-line reply without its last (the greeting's `220-` teaser
   * before an early-talker wait): the reply goes on with the next {@link add}.
   */
  addOpening(reply: Reply): void {
    this.#output.queue(formatReply(reply).replace(/^(\d{3}) /, '$1-'));
  }

  /** Writes what is queued, unless a TLS handshake holds the output. */
  flush(): void {
    if (this.#trace && this.#output.queued > 0) this.#owner.log.trace({ bytes: Buffer.byteLength(this.#output.pending) }, 'written');
    this.#output.flush();
  }

  /** A TLS handshake starts: nothing may be written until {@link resume}. */
  hold(): void {
    this.#output.hold();
  }

  /** The handshake is done: writes go to the TLS socket from now on. */
  resume(socket: Socket): void {
    this.#output.resume(socket);
  }

  /** Sends what is queued and `last`, then ends the socket, destroying it if it lingers. */
  end(last: readonly Reply[], closeWhenSent = false): void {
    this.#ending = true;
    for (const reply of last) this.add(reply);
    this.#output.end(closeWhenSent);
  }
}
