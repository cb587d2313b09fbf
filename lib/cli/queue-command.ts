/**
 * `sirocco queue`: an operator's look at a Deliver queue folder, and the few things done to it by
 * hand. It works on the files alone, beside a running server: a message being delivered is shown
 * as such and left alone.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Spool, type QueueEntry } from '../outbound/spool.js';

export const QUEUE_USAGE = `Usage: sirocco queue COMMAND QUEUE_DIR [ID...]

Looks at and acts on the queue folder of a server run with --handler deliver:QUEUE_DIR.

Commands:
  list QUEUE_DIR            every message: id, waiting or being sent, attempts,
                            sender and the recipients still to deliver
  show QUEUE_DIR ID         one message: its envelope, each recipient's last reply,
                            and its header section
  retry QUEUE_DIR [ID...]   try these messages (all waiting ones without ids) at the
                            server's next look at the folder
  delete QUEUE_DIR ID...    drop these messages without delivering or bouncing them

A message being delivered at that moment is not retried or deleted: try again after.
A state file that cannot be read is named by list (exit status 1); the server moves
it to QUEUE_DIR/quarantine/ when it comes due, where it stays for the operator.
`;

type Write = (text: string) => void;

function describeWhen(entry: QueueEntry, active: boolean): string {
  if (active) return 'being sent now';
  return entry.nextAttemptAt <= Date.now() ? 'due now' : `waiting until ${new Date(entry.nextAttemptAt).toISOString()}`;
}

function listLine(entry: QueueEntry, active: boolean): string {
  const pending = entry.recipients.filter((r) => r.state === 'pending').map((r) => r.address);
  const age = Math.round((Date.now() - entry.queuedAt) / 60_000);
  return `${entry.id}  ${describeWhen(entry, active)}  attempts ${entry.attempts}  age ${age} min  <${entry.from}> -> ${pending.join(', ') || '(none left)'}`;
}

async function show(spool: Spool, id: string, out: Write): Promise<boolean> {
  const found = (await spool.list()).find((m) => m.entry.id === id);
  if (found === undefined) return false;
  const { entry, active } = found;
  out(`id:        ${entry.id}\n`);
  out(`state:     ${describeWhen(entry, active)}\n`);
  out(`queued:    ${new Date(entry.queuedAt).toISOString()}\n`);
  out(`attempts:  ${entry.attempts}\n`);
  out(`from:      <${entry.from}>\n`);
  out(`size:      ${entry.size} bytes${entry.requireTls ? ', REQUIRETLS' : ''}${entry.ret === undefined ? '' : `, RET=${entry.ret}`}\n`);
  for (const r of entry.recipients) {
    const last =
      r.reply === undefined ? 'not tried yet' : `${r.exchanger === undefined ? '' : `${r.exchanger}: `}${r.reply.replace(/\r?\n/g, ' ')}`;
    out(`to:        <${r.address}> ${r.state}: ${last}\n`);
  }
  let content: Buffer;
  try {
    content = readFileSync(spool.dataPath(entry.id));
  } catch (err) {
    out(`\n(the content cannot be read: ${err instanceof Error ? err.message : String(err)})\n`);
    return true;
  }
  const blank = content.indexOf('\r\n\r\n');
  out(`\n${content.subarray(0, blank === -1 ? Math.min(content.length, 4096) : blank).toString('utf8')}\n`);
  return true;
}

/** Runs `sirocco queue …`; resolves to the exit status. */
export async function queueCommand(args: readonly string[], out: Write, err: Write): Promise<number> {
  const [command, dir, ...ids] = args;
  if (command === undefined || command === '--help' || command === 'help') {
    out(QUEUE_USAGE);
    return command === undefined ? 2 : 0;
  }
  if (!['list', 'show', 'retry', 'delete'].includes(command)) {
    err(`sirocco queue: unknown command ${JSON.stringify(command)}: expected list, show, retry or delete (see sirocco queue --help)\n`);
    return 2;
  }
  if (dir === undefined) {
    err(`sirocco queue ${command}: QUEUE_DIR is missing (see sirocco queue --help)\n`);
    return 2;
  }
  const folder = resolve(dir);
  if (!existsSync(join(folder, 'queue')) || !existsSync(join(folder, 'data'))) {
    err(`sirocco queue: ${folder} is not a queue folder (it has no queue/ and data/)\n`);
    return 1;
  }
  const spool = new Spool(folder);
  if (command === 'list') {
    const listed = await spool.list();
    for (const { entry, active } of listed) out(`${listLine(entry, active)}\n`);
    out(`${listed.length} message${listed.length === 1 ? '' : 's'} in the queue\n`);
    // Unreadable state files are named, and make the status 1, so a check notices them.
    const bad = await spool.unreadable();
    for (const { file, reason } of bad) err(`${file}: cannot be read: ${reason}\n`);
    return bad.length === 0 ? 0 : 1;
  }
  if ((command === 'show' || command === 'delete') && ids.length === 0) {
    err(`sirocco queue ${command}: give the id of a message (sirocco queue list shows them)\n`);
    return 2;
  }
  if (command === 'show') {
    if (ids.length > 1) {
      err('sirocco queue show: one id at a time\n');
      return 2;
    }
    if (await show(spool, ids[0] ?? '', out)) return 0;
    err(`sirocco queue show: no message ${ids[0] ?? ''} in ${folder}\n`);
    return 1;
  }
  const targets = ids.length > 0 ? ids : (await spool.list()).filter((m) => !m.active).map((m) => m.entry.id);
  let failed = 0;
  for (const id of targets) {
    const done = command === 'retry' ? await spool.retryNow(id) : await spool.remove(id);
    if (done) out(`${id}: ${command === 'retry' ? 'due now' : 'deleted'}\n`);
    else {
      failed++;
      const where = await spool.locate(id);
      err(`${id}: ${where?.active === true ? 'being delivered now; try again in a moment' : 'no such message'}\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}
