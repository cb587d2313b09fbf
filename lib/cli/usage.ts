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

/** What `sirocco --help` prints. */
export const USAGE = `Usage: sirocco [options]

Runs an SMTP server with a ready handler or your own RequestHandler.

Options:
  --listen ADDRESS          HOST:PORT, [IPv6]:PORT, :PORT (every interface) or a Unix
                            socket path (default 127.0.0.1:2525)
  --handler HANDLER         what to do with each message (default debugging):
                              sink                accept and discard
                              debugging           print envelope and body to stdout
                              maildir:DIR         store in the Maildir DIR (durable)
                              relay:HOST[:PORT]   forward to a smarthost (port 25)
                              deliver:QUEUE_DIR   queue durably in QUEUE_DIR and deliver
                                                  to each recipient domain's MX
                              FILE:CLASS          your RequestHandler subclass CLASS,
                                                  exported by the module FILE
  --hostname NAME           name in the greeting and EHLO reply
  --max-message-size BYTES  largest message accepted (default 26214400)
  --max-recipients N        recipients per message (default 100)
  --idle-timeout SECONDS    idle time before 421 (default 300)
  --tls-key FILE            PEM key: offer STARTTLS (with --tls-cert)
  --tls-cert FILE           PEM certificate (both read again on SIGHUP)
  --implicit-tls            TLS from the first byte (SMTPS) instead of STARTTLS
  --lmtp                    speak LMTP (LHLO, one reply per recipient); often with
                            --listen on a Unix socket path
  --proxy-from CIDR         a load balancer whose connections start with a PROXY
                            header (v1 or v2); repeat for several
  --metrics-listen ADDRESS  serve Prometheus metrics on /metrics: PORT listens on
                            127.0.0.1 only, :PORT on every interface, HOST:PORT
                            or [IPv6]:PORT where it says
  --limit-store URL         share the per-client limits with other hosts in Redis:
                            redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS),
                            ?prefix=KEYS:&lease=MS&timeout=MS&fail=open|closed
  --socket-mode MODE        a Unix socket --listen's file mode (octal, e.g. 660)
  --socket-group GROUP      a Unix socket --listen's group (name or number)
  --pop3-listen ADDRESS     also serve POP3 (HOST:PORT) over the Maildir of
                            --handler maildir:DIR (one folder per user with
                            --set maildirPerRecipient=true); STLS with --tls-key
  --pop3-users FILE         the POP3 users, one NAME:PASSWORD per line
  --workers N               serve from N worker processes sharing the port (0: one
                            per CPU); SIGHUP then restarts them one at a time
  --drain-timeout SECONDS   how long closing waits for open transactions (default 30)
  --log-level LEVEL         fatal, error, warn, info (default), debug, trace or
                            silent; logs are readable lines on a terminal, JSON
                            otherwise
  --set KEY=VALUE           any other application setting, for your handler;
                            VALUE is parsed as JSON when it can be (repeatable)
  --config FILE             read these options from a YAML file (the same names,
                            settings under settings:); flags given here win
  --check-config            check the configuration, print it (secrets masked)
                            and exit
  --help                    show this and exit

Relaying: relay and deliver send on only for clients that authenticated or
connect from trustedNetworks (loopback by default), and take mail from anyone
only for relayDomains (none by default); other recipients get 554 5.7.1. Open
it up with, for example:
  --set 'trustedNetworks=["127.0.0.0/8","::1","10.0.0.0/8"]'
  --set 'relayDomains=["example.com",".example.org"]'

The queue of deliver: sirocco queue list|show|retry|delete QUEUE_DIR (see
sirocco queue --help).
A mail catcher (SMTP on 1025, a web view and JSON API on 8025): sirocco catch (see
sirocco catch --help).

Examples:
  sirocco --listen 127.0.0.1:2525 --handler maildir:./mail
  sirocco --handler relay:smtp.example.com:587
  sirocco --listen :25 --hostname mx.example.com --handler deliver:/var/spool/sirocco
  sirocco --handler ./inbound.js:Inbound --set domain=example.com

SIGINT and SIGTERM close the server cleanly: open transactions finish first.
`;
