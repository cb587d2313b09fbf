// The house rules for imports in lib/, checked by `npm run deps` (part of `npm test`).
// Layers, lowest first: protocol ← app ← server ← handlers, testing, cli; lib/application.ts joins
// app and server; lib/index.ts is the one public face. Type-only imports count too.
const layer = (name) => `^lib/${name}/`;

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
      name: 'app-below-server',
      severity: 'error',
      comment: 'lib/app (the Tornado layer) knows the protocol, never the I/O that serves it.',
      from: { path: layer('app') },
      to: { path: ['^lib/(server|handlers|testing|cli)/', '^lib/(application|index)\\.ts$'] },
    },
    {
      name: 'server-below-users',
      severity: 'error',
      comment: 'lib/server serves any application: it knows no ready handler, test tool or command.',
      from: { path: layer('server') },
      to: { path: ['^lib/(handlers|testing|cli)/', '^lib/(application|index)\\.ts$'] },
    },
    {
      name: 'handlers-use-the-handler-api',
      severity: 'error',
      comment: 'Ready handlers are written as users write theirs: on lib/app and lib/protocol only.',
      from: { path: layer('handlers') },
      to: { path: ['^lib/(server|testing|cli)/', '^lib/(application|index)\\.ts$'] },
    },
    {
      name: 'index-is-the-top',
      severity: 'error',
      comment: 'lib/index.ts is the public face; nothing inside lib/ imports it.',
      from: { path: '^lib/' },
      to: { path: '^lib/index\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|docs|spec|examples|bench)/' },
  },
};
