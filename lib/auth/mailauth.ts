/**
 * mailauth, loaded on first use (a server that never verifies, signs or asks for an MTA-STS
 * policy never loads it), then kept: an `import()` per message costs as much as a verification.
 */
type Mailauth = typeof import('mailauth');
type MailauthSts = typeof import('mailauth/lib/mta-sts.js');

let main: Promise<Mailauth> | undefined;
let sts: Promise<MailauthSts> | undefined;

/** The package's main module: verification, signing, sealing. */
export function mailauth(): Promise<Mailauth> {
  main ??= import('mailauth');
  return main;
}

/** Its MTA-STS module (not re-exported by the main one). */
export function mailauthSts(): Promise<MailauthSts> {
  sts ??= import('mailauth/lib/mta-sts.js') as Promise<MailauthSts>;
  return sts;
}
