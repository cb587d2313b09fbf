/** A raw `net` client for asserting exact reply bytes. Every wait is bounded in time. */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

const WAIT_MS = 5000;

export class RawClient {
  socket: Socket;
  #buffer = '';
  #closed = false;
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    this.#listen(socket);
  }

  #listen(socket: Socket): void {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.#buffer += text;
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  /** Connects with TLS from the first byte (implicit TLS). */
  static async connectTls(port: number, options: ConnectionOptions): Promise<RawClient> {
    const socket = tlsConnect({ port, host: '127.0.0.1', ...options });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /**
   * After a 220 to STARTTLS: hands the plain socket to TLS. Anything unread is dropped, as a
   * client must. Resolves with the TLS socket once the handshake is done.
   */
  async startTls(options: ConnectionOptions): Promise<TLSSocket> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    this.#buffer = '';
    const secure = tlsConnect({ socket: plain, ...options });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.#listen(secure);
    return secure;
  }

  static async connect(port: number | string, host = '127.0.0.1', localAddress?: string): Promise<RawClient> {
    const socket =
      typeof port === 'string' ? connect(port) : connect({ port, host, ...(localAddress === undefined ? {} : { localAddress }) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Connects and reads the greeting. */
  static async greeted(port: number | string, host?: string): Promise<RawClient> {
    const client = await RawClient.connect(port, host);
    await client.reply();
    return client;
  }

  /** Connects, reads the greeting and greets with `EHLO c.test`, which must be accepted. */
  static async ehlo(port: number | string, host?: string): Promise<RawClient> {
    const client = await RawClient.greeted(port, host);
    const reply = await client.command('EHLO c.test');
    if (!reply.startsWith('250')) throw new Error(`EHLO refused: ${reply}`);
    return client;
  }

  /** Greets, then MAIL, RCPT and DATA, each of which must be accepted: the data comes next. */
  static async inData(port: number | string, from = 'a@b.test', to: readonly string[] = ['c@d.test']): Promise<RawClient> {
    const client = await RawClient.ehlo(port);
    const expect = async (line: string, code: string): Promise<void> => {
      const reply = await client.command(line);
      if (!reply.startsWith(code)) throw new Error(`${line}: expected ${code}, got ${reply}`);
    };
    await expect(`MAIL FROM:<${from}>`, '250 2.1.0');
    for (const rcpt of to) await expect(`RCPT TO:<${rcpt}>`, '250 2.1.5');
    await expect('DATA', '354');
    return client;
  }

  /**
   * Greets, then sends one message as `MAIL FROM:<from> BODY=BINARYMIME`, one RCPT and one
   * `BDAT … LAST`, pipelined; resolves with the reply to the BDAT and closes.
   */
  static async binaryMessage(port: number, from: string, to: string, payload: Buffer): Promise<string> {
    const client = await RawClient.ehlo(port);
    client.write(
      Buffer.concat([Buffer.from(`MAIL FROM:<${from}> BODY=BINARYMIME\r\nRCPT TO:<${to}>\r\nBDAT ${payload.length} LAST\r\n`), payload]),
    );
    await client.reply();
    await client.reply();
    const reply = await client.reply();
    client.close();
    return reply;
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends one command line (CRLF added) and returns its whole reply. */
  async command(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** The next whole reply (every line, CRLFs kept). */
  async reply(): Promise<string> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const end = completeReplyEnd(this.#buffer);
      if (end !== -1) {
        const reply = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end);
        return reply;
      }
      if (this.#closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.#buffer)}`);
      await this.#wait(deadline);
    }
  }

  /** Takes everything unread once `done(text)` holds of it, within `ms` (for replies by the thousand). */
  async readUntil(done: (text: string) => boolean, ms = WAIT_MS): Promise<string> {
    const deadline = Date.now() + ms;
    while (!done(this.#buffer)) {
      if (this.#closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.#buffer.slice(-500))}`);
      await this.#wait(deadline);
    }
    const text = this.#buffer;
    this.#buffer = '';
    return text;
  }

  /** Resolves once the server closed the connection; returns what was unread. */
  async closedByServer(): Promise<string> {
    const deadline = Date.now() + WAIT_MS;
    while (!this.#closed) await this.#wait(deadline);
    return this.#buffer;
  }

  close(): void {
    this.socket.destroy();
  }

  async #wait(deadline: number): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for the server; unread: ${JSON.stringify(this.#buffer)}`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** Where the first complete reply in `text` ends, or -1. */
function completeReplyEnd(text: string): number {
  let start = 0;
  for (;;) {
    const end = text.indexOf('\r\n', start);
    if (end === -1) return -1;
    if (text[start + 3] !== '-') return end + 2;
    start = end + 2;
  }
}
