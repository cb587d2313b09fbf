/**
 * The POP3 session (RFC 1939) as a state machine, with CAPA and response codes (RFC 2449, RFC
 * 3206) and STLS (RFC 2595). Pure: a command line in, what to do out. The server does the I/O an
 * action names (check a password and lock the mailbox, read a message, delete at QUIT, start TLS)
 * and tells the session how it went.
 */

/**
 * One message of the maildrop as the session lists it.
 *
 * @example
 * ```ts
 * const listed: Pop3Message = { uid: 'a1b2c3', size: 1024 };
 * ```
 */
export interface Pop3Message {
  /** The unique id (UIDL): 1 to 70 characters from 0x21 to 0x7E. */
  readonly uid: string;
  /** Its size in octets, as it is sent (before the terminating dot-stuffing). */
  readonly size: number;
}

/** `1 message`, `2 messages`. */
function countOf(count: number): string {
  return `${count} message${count === 1 ? '' : 's'}`;
}

/** What the server does next. Reply lines come without CRLF; a multi-line reply ends with `.`. */
export type Pop3Action =
  | { readonly kind: 'reply'; readonly lines: readonly string[] }
  /** `asked`: the client asked to end (QUIT) and may send nothing more. */
  | { readonly kind: 'close'; readonly lines: readonly string[]; readonly asked?: true }
  | { readonly kind: 'authenticate'; readonly user: string; readonly password: string }
  | { readonly kind: 'retrieve'; readonly uid: string; readonly size: number; readonly bodyLines: number | undefined }
  | { readonly kind: 'stls' }
  | { readonly kind: 'update'; readonly deleted: readonly string[] };

export type Pop3State = 'authorization' | 'transaction' | 'closed';

/** How a session starts. */
export interface Pop3SessionOptions {
  /** The server's name, in the greeting. */
  readonly hostname: string;
  /** Whether STLS can be offered (TLS is configured). */
  readonly tlsAvailable: boolean;
  /** Whether the connection is TLS from the start. */
  readonly secure: boolean;
  /** Refuse USER and PASS before TLS. */
  readonly requireTls: boolean;
  /** Refused commands before the session closes. Default 10. */
  readonly maxErrors?: number;
}

const reply = (...lines: string[]): Pop3Action => ({ kind: 'reply', lines });
const MESSAGE_NUMBER = /^[1-9]\d{0,8}$/;
const LINE_COUNT = /^\d{1,9}$/;

export class Pop3Session {
  readonly #options: Pop3SessionOptions;
  #state: Pop3State = 'authorization';
  #secure: boolean;
  #user: string | undefined;
  #messages: readonly Pop3Message[] = [];
  #deleted: boolean[] = [];
  #errors = 0;

  constructor(options: Pop3SessionOptions) {
    this.#options = options;
    this.#secure = options.secure;
  }

  get state(): Pop3State {
    return this.#state;
  }

  /** Whether the connection is under TLS. */
  get secure(): boolean {
    return this.#secure;
  }

  /** The user once authenticated. */
  get user(): string | undefined {
    return this.#state === 'transaction' ? this.#user : undefined;
  }

  greeting(): string {
    return `+OK ${this.#options.hostname} POP3 server ready`;
  }

  /** A line longer than the limit (RFC 2449 §4: 255 octets) was discarded. */
  tooLong(): Pop3Action {
    return this.#error('-ERR Line too long');
  }

  /** One command line, without its line ending. */
  line(text: string): Pop3Action {
    if (this.#state === 'closed') return { kind: 'close', lines: [] };
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(text)) return this.#error('-ERR Control characters are not allowed');
    const space = text.indexOf(' ');
    const keyword = (space === -1 ? text : text.slice(0, space)).toUpperCase();
    const rest = space === -1 ? undefined : text.slice(space + 1);
    const args = rest === undefined ? [] : rest.split(' ');
    switch (keyword) {
      case '':
        return this.#error('-ERR Empty command');
      case 'CAPA':
        return this.#noArgs(keyword, args) ?? this.#capa();
      case 'QUIT':
        return this.#noArgs(keyword, args) ?? this.#quit();
    }
    if (this.#state === 'authorization') return this.#authorization(keyword, args, rest);
    return this.#transaction(keyword, args);
  }

  #authorization(keyword: string, args: string[], rest: string | undefined): Pop3Action {
    switch (keyword) {
      case 'STLS':
        if (args.length > 0) return this.#error('-ERR STLS takes no argument');
        if (!this.#options.tlsAvailable) return this.#error('-ERR TLS is not available');
        if (this.#secure) return this.#error('-ERR TLS is already active');
        return { kind: 'stls' };
      case 'USER':
        if (this.#options.requireTls && !this.#secure)
          return this.#error('-ERR [AUTH] Plaintext authentication is disabled: use STLS first');
        if (args.length !== 1 || args[0] === '') return this.#error('-ERR USER takes one argument: the mailbox name');
        this.#user = args[0];
        return reply(`+OK Send the password for ${args[0] ?? ''}`);
      case 'PASS': {
        if (this.#options.requireTls && !this.#secure)
          return this.#error('-ERR [AUTH] Plaintext authentication is disabled: use STLS first');
        if (this.#user === undefined) return this.#error('-ERR Send USER first');
        // RFC 1939 §7: the password is the rest of the line, spaces included.
        if (rest === undefined || rest === '') return this.#error('-ERR PASS takes the password');
        return { kind: 'authenticate', user: this.#user, password: rest };
      }
      case 'APOP':
      case 'AUTH':
        return this.#error(`-ERR ${keyword} is not supported: use USER and PASS`);
      case 'STAT':
      case 'LIST':
      case 'RETR':
      case 'DELE':
      case 'NOOP':
      case 'RSET':
      case 'TOP':
      case 'UIDL':
        return this.#error('-ERR Not authenticated: send USER and PASS first');
      default:
        return this.#error('-ERR Unknown command');
    }
  }

  /** The server checked the password and locked the maildrop: the session enters TRANSACTION. */
  authenticated(messages: readonly Pop3Message[]): Pop3Action {
    this.#state = 'transaction';
    this.#messages = messages;
    this.#deleted = messages.map(() => false);
    const { count, octets } = this.#totals();
    return reply(`+OK ${this.#user ?? ''} has ${countOf(count)} (${octets} octets)`);
  }

  /** The password was refused, the maildrop is in use, or the check failed for now. */
  authFailed(why: 'invalid' | 'in-use' | 'temporary'): Pop3Action {
    this.#user = undefined;
    if (why === 'in-use') return this.#error('-ERR [IN-USE] The mailbox is already in use');
    if (why === 'temporary') return this.#error('-ERR [SYS/TEMP] Authentication is not possible now, try again later');
    return this.#error('-ERR [AUTH] Invalid user name or password');
  }

  /** TLS is up after STLS: what came before it is forgotten (RFC 2595 §4). */
  secured(): void {
    this.#secure = true;
    this.#user = undefined;
  }

  #transaction(keyword: string, args: string[]): Pop3Action {
    switch (keyword) {
      case 'STAT': {
        const bad = this.#noArgs(keyword, args);
        if (bad !== undefined) return bad;
        const { count, octets } = this.#totals();
        return reply(`+OK ${count} ${octets}`);
      }
      case 'LIST':
      case 'UIDL': {
        const field = (i: number): string => {
          const message = this.#messages[i];
          return keyword === 'LIST' ? String(message?.size ?? 0) : (message?.uid ?? '');
        };
        if (args.length === 0) {
          const { count, octets } = this.#totals();
          const lines = this.#messages.flatMap((_, i) => (this.#deleted[i] === true ? [] : [`${i + 1} ${field(i)}`]));
          return reply(keyword === 'LIST' ? `+OK ${countOf(count)} (${octets} octets)` : '+OK Unique ids follow', ...lines, '.');
        }
        const found = this.#message(keyword, args, 1);
        return typeof found === 'number' ? reply(`+OK ${found + 1} ${field(found)}`) : found;
      }
      case 'RETR': {
        const found = this.#message(keyword, args, 1);
        if (typeof found !== 'number') return found;
        const message = this.#messages[found];
        return { kind: 'retrieve', uid: message?.uid ?? '', size: message?.size ?? 0, bodyLines: undefined };
      }
      case 'TOP': {
        const found = this.#message(keyword, args, 2);
        if (typeof found !== 'number') return found;
        const lines = args[1] ?? '';
        if (!LINE_COUNT.test(lines)) return this.#error('-ERR TOP takes a message number and a number of lines');
        const message = this.#messages[found];
        return { kind: 'retrieve', uid: message?.uid ?? '', size: message?.size ?? 0, bodyLines: Number(lines) };
      }
      case 'DELE': {
        const found = this.#message(keyword, args, 1);
        if (typeof found !== 'number') return found;
        this.#deleted[found] = true;
        return reply(`+OK Message ${found + 1} deleted`);
      }
      case 'NOOP':
        return this.#noArgs(keyword, args) ?? reply('+OK');
      case 'RSET': {
        const bad = this.#noArgs(keyword, args);
        if (bad !== undefined) return bad;
        this.#deleted = this.#messages.map(() => false);
        const { count, octets } = this.#totals();
        return reply(`+OK ${countOf(count)} (${octets} octets)`);
      }
      case 'USER':
      case 'PASS':
      case 'STLS':
      case 'APOP':
      case 'AUTH':
        return this.#error('-ERR Already authenticated');
      default:
        return this.#error('-ERR Unknown command');
    }
  }

  /** The message a command names (its index), or the refusal. */
  #message(keyword: string, args: string[], count: number): number | Pop3Action {
    if (args.length !== count) {
      return this.#error(
        count === 1 ? `-ERR ${keyword} takes a message number` : `-ERR ${keyword} takes a message number and a number of lines`,
      );
    }
    const text = args[0] ?? '';
    if (!MESSAGE_NUMBER.test(text)) return this.#error(`-ERR Invalid message number: ${text.slice(0, 40)}`);
    const index = Number(text) - 1;
    if (index >= this.#messages.length) return this.#error(`-ERR No such message: ${text}`);
    if (this.#deleted[index] === true) return this.#error(`-ERR Message ${text} is deleted`);
    return index;
  }

  #quit(): Pop3Action {
    if (this.#state === 'authorization') {
      this.#state = 'closed';
      return { kind: 'close', lines: [`+OK ${this.#options.hostname} POP3 server signing off`], asked: true };
    }
    // RFC 1939 §6: the UPDATE state; the deletions happen now, and only now.
    const deleted = this.#messages.flatMap((m, i) => (this.#deleted[i] === true ? [m.uid] : []));
    return { kind: 'update', deleted };
  }

  /** The deletions of QUIT were made (or some failed): the last reply, then the session closes. */
  updated(ok: boolean): Pop3Action {
    this.#state = 'closed';
    if (!ok) return { kind: 'close', lines: ['-ERR [SYS/TEMP] Some deleted messages were not removed'], asked: true };
    const { count } = this.#totals();
    return {
      kind: 'close',
      lines: [`+OK ${this.#options.hostname} POP3 server signing off (${count} message${count === 1 ? '' : 's'} left)`],
      asked: true,
    };
  }

  #capa(): Pop3Action {
    const plaintextAllowed = !this.#options.requireTls || this.#secure;
    return reply(
      '+OK Capability list follows',
      'TOP',
      'UIDL',
      ...(plaintextAllowed && this.#state === 'authorization' ? ['USER'] : []),
      'RESP-CODES',
      'AUTH-RESP-CODE',
      ...(this.#options.tlsAvailable && !this.#secure && this.#state === 'authorization' ? ['STLS'] : []),
      'IMPLEMENTATION Sirocco',
      '.',
    );
  }

  #noArgs(keyword: string, args: string[]): Pop3Action | undefined {
    return args.length === 0 ? undefined : this.#error(`-ERR ${keyword} takes no argument`);
  }

  #totals(): { count: number; octets: number } {
    let count = 0;
    let octets = 0;
    this.#messages.forEach((m, i) => {
      if (this.#deleted[i] === true) return;
      count++;
      octets += m.size;
    });
    return { count, octets };
  }

  /** A refusal; past `maxErrors` of them, the last one closes the session. */
  #error(line: string): Pop3Action {
    this.#errors++;
    if (this.#errors >= (this.#options.maxErrors ?? 10)) {
      this.#state = 'closed';
      return { kind: 'close', lines: [line, '-ERR Too many errors, closing connection'] };
    }
    return reply(line);
  }
}
