/**
 * What `sirocco catch` runs once its arguments are good: a Controller with an inbox, the inbox's
 * HTTP API, and POP3 over it when asked. One module, loaded by the command alone, so the test
 * tools come in one piece and only for it.
 */
import { RequestHandler } from '../app/request-handler.js';
import { Pop3Server } from '../pop3/pop3-server.js';
import { Controller } from '../testing/controller.js';
import { InboxDirectory } from '../testing/inbox-dir.js';
import { InboxHttpServer } from '../testing/inbox-http.js';
import { InboxStore } from '../testing/inbox-store.js';

/** `sirocco catch`'s arguments, parsed. */
export interface CatchPlan {
  readonly smtp: { readonly host: string; readonly port: number };
  readonly http: { readonly host: string; readonly port: number };
  readonly maxMessages: number;
  readonly pop3: { readonly host: string; readonly port: number } | undefined;
  readonly catchDir: string | undefined;
  readonly releaseTo: { readonly host: string; readonly port: number } | undefined;
  readonly auth: { readonly user: string; readonly password: string } | undefined;
  readonly help: boolean;
}

/** Runs the catcher until SIGINT or SIGTERM; resolves to the exit status. */
export async function runCatcher(plan: CatchPlan, out: (text: string) => void, err: (text: string) => void): Promise<number> {
  const controller = new Controller(RequestHandler, {
    hostname: plan.smtp.host,
    port: plan.smtp.port,
    inbox: { maxMessages: plan.maxMessages },
    logLevel: 'warn',
  });
  const http = new InboxHttpServer(controller.inbox, controller.faults);
  const pop3 =
    plan.pop3 === undefined
      ? undefined
      : new Pop3Server({
          store: new InboxStore(controller.inbox),
          hostname: 'catch.localhost',
          // A catcher's mailboxes are open: the user names a recipient, the password is not checked.
          authenticate: () => true,
          allowInsecureAuth: true,
        });
  const kept = plan.catchDir === undefined ? undefined : new InboxDirectory(plan.catchDir, (e) => err(`sirocco: catch: ${e.message}\n`));
  let read: number;
  try {
    read = (await kept?.attach(controller.inbox)) ?? 0;
    await controller.start();
    await http.listen({
      ...plan.http,
      ...(plan.auth === undefined ? {} : { auth: plan.auth }),
      ...(plan.releaseTo === undefined ? {} : { releaseTo: plan.releaseTo }),
    });
    if (pop3 !== undefined && plan.pop3 !== undefined) await pop3.listen(plan.pop3.port, plan.pop3.host);
  } catch (e) {
    await Promise.allSettled([controller.stop(), http.close(), pop3?.close(), kept?.detach()]);
    err(`sirocco: catch: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  const where = http.address();
  const host = where.family === 'IPv6' ? `[${where.address}]` : where.address;
  const popWhere = pop3?.address();
  const popText = popWhere === undefined || popWhere === null ? '' : `, POP3 on ${plan.pop3?.host ?? ''}:${popWhere.port}`;
  if (kept !== undefined) out(`sirocco catch: ${read} message${read === 1 ? '' : 's'} read from ${kept.path}\n`);
  out(
    `sirocco catch: SMTP on ${plan.smtp.host}:${controller.port}, web view on http://${host}:${where.port}/ (API under /api/v1/)${popText}\n`,
  );
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      out('sirocco: closing\n');
      void Promise.allSettled([http.close(), pop3?.close(), controller.stop()])
        .then(() => kept?.detach())
        .then(() => done());
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}
