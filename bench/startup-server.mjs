// Row (s) of npm run bench: one server started the way a user starts it, from the built package
// (dist/, made by `npm ci` through `prepare`) or from smtp-server, in a fresh Node process with
// nothing else loaded. Reports its port once listening; answers 'rss' with its resident memory
// after a garbage collection. Plain JavaScript, so no TypeScript loader weighs on either side.
const kind = process.argv[2];
let port;
if (kind === 'sirocco') {
  const { Application, RequestHandler } = await import('../dist/lib/index.js');
  const { pino } = await import('pino');
  const server = await new Application(RequestHandler, { hostname: 'bench.test', logger: pino({ level: 'silent' }) }).listen(
    0,
    '127.0.0.1',
  );
  port = server.address().port;
} else if (kind === 'smtp-server') {
  const { SMTPServer } = await import('smtp-server');
  const server = new SMTPServer({ name: 'bench.test', logger: false, disabledCommands: ['AUTH', 'STARTTLS'], disableReverseLookup: true });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = server.server.address().port;
} else {
  throw new Error(`bench/startup-server.mjs: unknown server ${kind}`);
}
process.on('message', (message) => {
  if (message !== 'rss') return;
  globalThis.gc?.();
  process.send({ rss: process.memoryUsage().rss });
});
process.send({ port });
