/** What the command line parsers share: the usage error, and where to listen. */

/** A bad command line: printed as one line, exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Where to listen. */
export type ListenTarget = { readonly port: number; readonly host: string } | { readonly path: string };

/** Parses `--listen` (and `--pop3-listen`, named by `option`). */
export function parseListen(text: string, option = '--listen'): ListenTarget {
  const hostPort = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (hostPort !== null) {
    const port = Number(hostPort[3]);
    if (port > 65535) throw new UsageError(`${option}: port ${port} is out of range`);
    return { host: hostPort[1] ?? hostPort[2] ?? '', port };
  }
  if (text.includes('/')) return { path: text };
  throw new UsageError(`${option}: expected HOST:PORT, [IPv6]:PORT, :PORT or a socket path, got ${JSON.stringify(text)}`);
}
