// The house rules for imports in lib/, checked by `npm run deps` (part of `npm test`).
// Floors, lowest first: protocol, storage, telemetry and auth; app and outbound; net (the connection kit); server (SMTP) and pop3;
// handlers (on app, outbound and storage); application.ts (app joined to server); testing and cli; index.ts (the core) and
// entry/ (sirocco/outbound, /testing, /pop3), the public faces.
// Type-only imports count too.
const layer = (name) => `^lib/${name}/`;

/** A rule: nothing in lib/`name` imports the folders `above` (a regex alternation), lib/application.ts or lib/index.ts. */
const below = (rule, name, comment, above) => ({
  name: rule,
  severity: 'error',
  comment,
  from: { path: layer(name) },
  to: { path: [`^lib/(${above})/`, '^lib/(application|index)\\.ts$'] },
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import circle ties files into one piece that cannot be read, tested or loaded apart.',
      from: { path: '^lib/' },
      to: { circular: true },
    },
    {
      name: 'protocol-is-pure',
      severity: 'error',
      comment: 'lib/protocol decides what the RFCs decide: it imports nothing above it and no package.',
      from: { path: layer('protocol') },
      to: { pathNot: [layer('protocol'), '^node:', '^(crypto|buffer)$'], dependencyTypesNot: ['core'] },
    },
    {
      name: 'protocol-does-no-io',
      severity: 'error',
      comment: 'lib/protocol has no sockets, files or timers of its own: only what the RFCs decide.',
      from: { path: layer('protocol') },
      to: { path: '^(node:)?(net|tls|fs|fs/promises|dgram|http|https|dns|child_process|cluster|timers)$' },
    },
    {
      name: 'storage-is-the-floor',
      severity: 'error',
      comment: 'lib/storage (folder names, Maildir files, durable writes) serves the Maildir handler, the POP3 store and the spool alike: it imports nothing of theirs.',
      from: { path: layer('storage') },
      to: { path: '^lib/', pathNot: layer('storage') },
    },
    {
      name: 'telemetry-is-the-floor',
      severity: 'error',
      comment: 'lib/telemetry (spans that cost nothing until an SDK is registered) serves the server and sending alike: it imports nothing of theirs.',
      from: { path: layer('telemetry') },
      to: { path: '^lib/', pathNot: layer('telemetry') },
    },
    {
      name: 'auth-is-the-floor',
      severity: 'error',
      comment: 'lib/auth (mail authentication over mailauth: verifying on the way in, signing on the way out) serves transactions and sending alike: it imports nothing of theirs.',
      from: { path: layer('auth') },
      to: { path: '^lib/', pathNot: layer('auth') },
    },
    below('net-is-the-kit', 'net', 'lib/net is the connection kit every protocol shares: it knows no protocol server, mail store, handler, test tool or command.', 'server|pop3|handlers|testing|cli|outbound'),
    below('app-below-server', 'app', 'lib/app (the Tornado layer) knows the protocol, never the I/O that serves it.', 'net|server|pop3|handlers|testing|cli'),
    below('server-below-users', 'server', 'lib/server serves any application: it knows no ready handler, POP3, test tool or command.', 'pop3|handlers|testing|cli'),
    below('outbound-below-handlers', 'outbound', 'lib/outbound delivers mail for any handler or command: it knows none of them, nor the server.', 'net|server|pop3|handlers|testing|cli'),
    {
      name: 'outbound-needs-no-app',
      severity: 'error',
      comment: 'Delivery works without an Application (sendDirect, the queue command): it imports no Tornado layer.',
      from: { path: layer('outbound') },
      to: { path: layer('app') },
    },
    below('pop3-below-users', 'pop3', 'lib/pop3 serves mail stores on the connection kit; it knows no SMTP server internals, SMTP handler, test tool or command.', 'server|handlers|testing|cli'),
    {
      name: 'pop3-session-is-pure',
      severity: 'error',
      comment: 'The POP3 session decides what RFC 1939 decides: no I/O, no package.',
      from: { path: '^lib/pop3/session\\.ts$' },
      to: { pathNot: ['^lib/pop3/session\\.ts$'] },
    },
    below('handlers-use-the-handler-api', 'handlers', 'Ready handlers are written as users write theirs: on lib/app, lib/protocol and lib/outbound only.', 'server|testing|cli'),
    {
      name: 'index-is-the-top',
      severity: 'error',
      comment: 'lib/index.ts is the public face; nothing inside lib/ imports it.',
      from: { path: '^lib/' },
      to: { path: '^lib/index\\.ts$' },
    },
    {
      name: 'entries-are-the-top',
      severity: 'error',
      comment: 'lib/entry/ holds the subpath entry points (sirocco/outbound, /testing, /pop3); nothing inside lib/ imports them.',
      from: { path: '^lib/' },
      to: { path: '^lib/entry/' },
    },
    {
      name: 'the-core-loads-no-extras',
      severity: 'error',
      comment: 'Importing sirocco (lib/index.ts) loads the server core only: sending, testing and POP3 are their own entry points.',
      from: { path: '^lib/index\\.ts$' },
      to: { path: ['^lib/(outbound|testing|pop3|cli|entry)/', '^lib/handlers/(deliver|relay|relay-access)\\.ts$'], reachable: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|docs|spec|examples|bench)/' },
  },
};
