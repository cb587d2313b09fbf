/** A raw POP3 client for exact bytes; every wait is bounded in time. */
import { connect, type Socket } from 'node:net';

/** A raw POP3 client: send a line, read a line or a multi-line answer, exactly. */
export class Pop3Client {
  #buffer = '';
  #closed = false;
  readonly socket: Socket;
  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (t: string) => (this.#buffer += t));
    socket.on('close', () => (this.#closed = true));
  }
  /** Connects to a port on 127.0.0.1, or to a Unix socket path. */
  static async connect(port: number | string): Promise<Pop3Client> {
    const socket = typeof port === 'string' ? connect(port) : connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new Pop3Client(socket);
  }
  async #until(done: () => number): Promise<string> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const end = done();
      if (end !== -1) {
        const text = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end);
        return text;
      }
      if (this.#closed || Date.now() > deadline) throw new Error(`no answer; unread: ${JSON.stringify(this.#buffer)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  /** Everything up to and with `end`. */
  until(end: string): Promise<string> {
    return this.#until(() => {
      const i = this.#buffer.indexOf(end);
      return i === -1 ? -1 : i + end.length;
    });
  }
  line(): Promise<string> {
    return this.#until(() => {
      const i = this.#buffer.indexOf('\r\n');
      return i === -1 ? -1 : i + 2;
    });
  }
  send(text: string): void {
    this.socket.write(`${text}\r\n`);
  }
  async command(text: string): Promise<string> {
    this.send(text);
    return this.line();
  }
  async closedByServer(): Promise<string> {
    const deadline = Date.now() + 5000;
    while (!this.#closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return this.#buffer;
  }
  close(): void {
    this.socket.destroy();
  }
}
