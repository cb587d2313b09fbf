/**
 * Who may send mail onwards through a ready handler that forwards ({@link Relay}, {@link Deliver}):
 * an authenticated client, a client in `trustedNetworks` (loopback by default), or anyone for a
 * recipient in `relayDomains`. Everyone else is refused at RCPT with `554 5.7.1`, as Postfix's
 * `mynetworks` with `reject_unauth_destination` does: never an open relay by default.
 */
import { IsArray, IsOptional, IsString, ValidateBy } from '../app/validators.js';
import { DkimSigner, type DkimKey } from '../auth/sign.js';
import { TrustedPeers } from '../app/trusted-peers.js';
import type { AnyServedApplication } from '../app/request-handler.js';
import { serviceKey } from '../app/services.js';
import { REPLIES } from '../protocol/replies.js';
import { SMTPError } from '../protocol/reply.js';
import { clientLabel, type Peer } from '../protocol/session-info.js';

/**
 * Settings of the relay check, shared by {@link RelaySettings} and {@link DeliverSettings}.
 *
 * @example
 * ```ts
 * new Application(Deliver, { queueDir: './queue', relayDomains: ['example.com'], trustedNetworks: ['10.0.0.0/8'] });
 * ```
 */
export class RelayAccessSettings {
  /**
   * DKIM keys (see `DkimKey`): each message sent on is signed with the keys of its From: domain,
   * over the bytes that go out (`Deliver` when it queues it; `Relay` once it has the whole
   * message, which it then holds, against `bodyMemoryBudget`). RSA (2048 bits advised) and
   * Ed25519; two keys of one domain sign twice. A rotation is a change here: a new selector and
   * key file.
   */
  @IsOptional()
  @ValidateBy({
    name: 'dkimKeys',
    validator: {
      validate: (value: unknown) => dkimProblem(value) === undefined,
      defaultMessage: (args) => dkimProblem(args?.value) ?? 'dkimKeys is not valid',
    },
  })
  dkimKeys?: DkimKey[];

  /**
   * Domains this server takes mail for from anyone (a backup MX, a forwarder for your domains).
   * Matched whole and case-insensitively; `.example.com` also matches every subdomain. Default: none.
   */
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  relayDomains?: string[];

  /**
   * Addresses and CIDRs whose clients may send to any domain without AUTH. Default loopback
   * only (`127.0.0.0/8`, `::1`); `[]` trusts nobody; `['0.0.0.0/0', '::/0']` is an open relay.
   */
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  trustedNetworks?: string[];

  /**
   * The recipients of `relayDomains` that exist (addresses, or `@domain` for every address of a
   * domain): an outside client's recipient not listed is refused `550 5.1.1` at RCPT, so the
   * next hop's refusal never has to come back to a sender nobody verified. Default: not checked.
   */
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  relayRecipients?: string[];
}

const LOOPBACK = ['127.0.0.0/8', '::1/128'];
const TRUSTED = serviceKey<TrustedPeers>('trusted networks');

/** The application's trusted networks, parsed once. */
function trustedOf(application: AnyServedApplication): TrustedPeers {
  return application.services.get(
    TRUSTED,
    () => new TrustedPeers((application.settings as RelayAccessSettings).trustedNetworks ?? LOOPBACK),
  );
}

/**
 * Whether `address`'s domain is one of `domains` (`.example.com` names every subdomain).
 *
 * @example
 * ```ts
 * inDomains('bob@Mail.Example.com', ['.example.com']); // true
 * ```
 */
export function inDomains(address: string, domains: readonly string[] | undefined): boolean {
  if (domains === undefined || domains.length === 0) return false;
  const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
  return domains.some((d) => {
    const want = d.toLowerCase();
    return want.startsWith('.') ? domain.endsWith(want) : domain === want;
  });
}

/** What the default relay decision looks at. */
export interface RelayFacts {
  readonly application: AnyServedApplication;
  readonly user: string | undefined;
  readonly remoteAddress: string;
}

/** The default decision: authenticated, trusted network, or a handled domain. */
/**
 * Whether a client is an outside one: neither authenticated nor in `trustedNetworks`. Its
 * sender was never verified, so no notice (bounce, delay, relayed) ever goes to it: a forged
 * sender would get them (backscatter).
 */
export function isOutside(facts: RelayFacts): boolean {
  return facts.user === undefined && !trustedOf(facts.application).has(facts.remoteAddress);
}

/** What Relay and Deliver offer for their RCPT check: the two overridable decisions, and the session. */
export interface RelayGate {
  readonly application: AnyServedApplication;
  readonly request: { readonly session: Peer & { readonly user: string | undefined } };
  mayRelay(address: string): boolean | Promise<boolean>;
  verifyRecipient(address: string): boolean | Promise<boolean>;
}

/** Whether a handler's client is an outside one (see {@link isOutside}). */
export function outsideClient(gate: Pick<RelayGate, 'application' | 'request'>): boolean {
  const { user, remoteAddress } = gate.request.session;
  return isOutside({ application: gate.application, user, remoteAddress });
}

/** The RCPT check of Relay and Deliver: `554 5.7.1` where relaying is not allowed, `550 5.1.1` for an outside client's unknown recipient. */
export async function checkRelayRecipient(gate: RelayGate, address: string): Promise<void> {
  if (!(await gate.mayRelay(address))) throw relayDenied(address, clientLabel(gate.request.session));
  if (outsideClient(gate) && !(await gate.verifyRecipient(address))) throw unknownRecipient(address);
}

/** Whether an outside client's recipient is one `relayRecipients` lists (every one when it is not set). */
export function listedRecipient(settings: RelayAccessSettings, address: string): boolean {
  const list = settings.relayRecipients;
  if (list === undefined) return true;
  const lower = address.toLowerCase();
  const domain = lower.slice(lower.lastIndexOf('@'));
  return list.some((entry) => {
    const e = entry.toLowerCase();
    return e === lower || e === domain;
  });
}

/** The refusal of a recipient `relayRecipients` does not list. */
export function unknownRecipient(address: string): SMTPError {
  return new SMTPError(550, [5, 1, 1], 'Recipient address rejected: unknown user', {
    logMessage: `recipient ${address} is not in relayRecipients`,
  });
}

export function mayRelay(facts: RelayFacts, address: string): boolean {
  const settings = facts.application.settings as RelayAccessSettings;
  return facts.user !== undefined || trustedOf(facts.application).has(facts.remoteAddress) || inDomains(address, settings.relayDomains);
}

/** The RCPT refusal for a client that may not relay to `address`. */
export function relayDenied(address: string, client: string): SMTPError {
  return SMTPError.from(REPLIES.relayDenied(), { logMessage: `relay to ${address} refused for unauthenticated client ${client}` });
}

/** Why `value` is not a list of usable DKIM keys, or `undefined` when it is. */
function dkimProblem(value: unknown): string | undefined {
  try {
    new DkimSigner(value as DkimKey[]);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

const SIGNER = serviceKey<DkimSigner>('DKIM signer');

/** The application's DKIM signer when `dkimKeys` is set: its keys read once, when first asked for. */
export function dkimSignerOf(application: AnyServedApplication, keys: readonly DkimKey[] | undefined): DkimSigner | undefined {
  return keys === undefined ? undefined : application.services.get(SIGNER, () => new DkimSigner(keys));
}
