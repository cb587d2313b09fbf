/**
 * The write half of a connection, for any line protocol (SMTP, LMTP, POP3): replies are queued and
 * written together (RFC 2920 §3.2 for SMTP; POP3 clients pipeline the same way, RFC 2449 §6.6),
 * and a client that does not read what was written stops being read until its socket drains.
 * That is the rule that bounds what one connection can make the server hold: its input waits in
 * the kernel, not in our memory, and its output is at most one batch.
 */
import type { Socket } from 'node:net';

/** How long a connection we ended may take to close before it is destroyed. */
const LINGER_MS = 5000;

/** What the output tells its connection. */
export interface OutputEvents {
  /** Something was written: the idle clock starts again. */
  wrote(): void;
  /** The client read what was waiting: the connection may read from it again. */
  drained(): void;
}

export class Output {
  #socket: Socket;
  readonly #events: OutputEvents;
  /** Text queued and not yet written. */
  #out = '';
  #held = false;
  #waitingForDrain = false;

  constructor(socket: Socket, events: OutputEvents) {
    this.#socket = socket;
    this.#events = events;
  }

  /** The socket written to now (it changes with a TLS upgrade). */
  get socket(): Socket {
    return this.#socket;
  }

  /** Whether the client has not read what was written: reading waits until it has. */
  get waitingForDrain(): boolean {
    return this.#waitingForDrain;
  }

  /** How many characters are queued: the input pump flushes past a bound, so output never grows with input. */
  get queued(): number {
    return this.#out.length;
  }

  /** The text queued and not yet written. */
  get pending(): string {
    return this.#out;
  }

  /** Queues text; it goes out with the next {@link flush}. */
  queue(text: string): void {
    this.#out += text;
  }

  /** Writes what is queued, unless a TLS handshake holds the output. */
  flush(): void {
    if (this.#out === '' || this.#held || this.#socket.destroyed) return;
    const data = this.#out;
    this.#out = '';
    this.#events.wrote();
    if (!this.#socket.write(data)) this.#waitForDrain();
  }

  /**
   * Writes bytes that are part of a long response (a POP3 RETR), at the client's pace: resolves
   * when the socket takes more, rejects when it closes first, so a stalled client that is then
   * closed leaves no read of ours waiting for ever (and the file behind it is closed).
   */
  send(bytes: Buffer): Promise<void> {
    const socket = this.#socket;
    if (socket.destroyed) return Promise.reject(new Error('the connection closed'));
    if (bytes.length === 0) return Promise.resolve();
    this.#events.wrote();
    if (socket.write(bytes)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (): void => {
        socket.off('drain', onDrain);
        socket.off('close', onClose);
      };
      const onDrain = (): void => {
        done();
        resolve();
      };
      const onClose = (): void => {
        done();
        reject(new Error('the connection closed'));
      };
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
  }

  #waitForDrain(): void {
    if (this.#waitingForDrain) return;
    // The client does not read its replies: stop reading its commands until it does.
    this.#waitingForDrain = true;
    const socket = this.#socket;
    socket.pause();
    socket.once('drain', () => {
      this.#waitingForDrain = false;
      this.#events.drained();
    });
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

  /**
   * Sends what is queued, then ends the socket, destroying it if it lingers. The linger timer is
   * cleared once the socket closes: left to run out, it kept every closed connection (its
   * socket, session and buffers) alive for 5 s, 20,000 of them under a load of short connections.
   *
   * `closeWhenSent`, for a client that asked to end (QUIT): the socket closes as soon as the last
   * write and the FIN are handed to the kernel, without waiting for the client's side (no linger
   * timer). Otherwise the client may still be sending (a pipelined batch refused with 421), and
   * closing with its bytes unread would reset the connection and could lose our last reply.
   */
  end(closeWhenSent = false): void {
    this.flush();
    const socket = this.#socket;
    socket.end();
    if (socket.destroyed) return;
    if (closeWhenSent) {
      // Closed once the last write and the FIN are handed to the kernel, which still delivers them.
      if (socket.writableFinished) socket.destroy();
      else socket.once('finish', () => socket.destroy());
      return;
    }
    const linger = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    socket.once('close', () => clearTimeout(linger));
  }

  /** Drops the connection at once; what is queued is not sent. */
  destroy(): void {
    this.#out = '';
    this.#socket.destroy();
  }
}
