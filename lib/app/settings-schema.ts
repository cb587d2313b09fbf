/**
 * Building the settings: class-validator over {@link ApplicationSettings} and over the handler's
 * own schema (`@settingsSchema`), and the checks that span several fields, each bad field named
 * in one {@link SettingsError}.
 */
import { sealKey } from './authentication.js';
import 'reflect-metadata';
import type { ValidationError } from 'class-validator';
import type { ConnectionKitSettings, TLSSettings } from './kit-settings.js';
import { ApplicationSettings } from './settings.js';
import { nearestName, settingNames } from './setting-names.js';
import { peerListProblems } from './trusted-peers.js';
import { validateSync } from './validators.js';

/**
 * One bad setting.
 *
 * @example
 * ```ts
 * catch (err) { if (err instanceof SettingsError) for (const p of err.problems) console.error(p.field, p.reasons); }
 * ```
 */
export interface SettingsProblem {
  /** The setting's name. */
  readonly field: string;
  /** What is wrong with it. */
  readonly reasons: readonly string[];
}

/**
 * Thrown by the {@link Application} constructor when settings are invalid; names every bad field.
 *
 * @example
 * ```ts
 * try { new Application(Inbound, { maxMessageSize: -1 }); }
 * catch (err) { if (err instanceof SettingsError) console.error(err.problems); }
 * ```
 */
export class SettingsError extends Error {
  /** Every bad field and why. */
  readonly problems: readonly SettingsProblem[];

  constructor(problems: readonly SettingsProblem[]) {
    super(`Invalid settings: ${problems.map((p) => `${p.field}: ${p.reasons.join(', ')}`).join('; ')}`);
    this.name = 'SettingsError';
    this.problems = problems;
  }
}

const SCHEMA_KEY = Symbol.for('sirocco:settingsSchema');

/**
 * Class decorator: declares a class-validator schema for a handler's own settings, so the
 * {@link Application} validates them together with its own.
 *
 * @example
 * ```ts
 * class InboundSettings { @IsString() domain!: string; }
 *
 * @settingsSchema(InboundSettings)
 * class Inbound extends RequestHandler<InboundSettings> {}
 *
 * new Application(Inbound, {}); // throws SettingsError naming `domain`
 * ```
 */
export function settingsSchema(schema: new () => object): ClassDecorator {
  return (target) => {
    Reflect.defineMetadata(SCHEMA_KEY, schema, target);
  };
}

/**
 * What is wrong with a settings object of the connection kit's schema (SMTP's or POP3's): every
 * field's own checks, then the checks the kit's fields make together. `logger` must be pino's;
 * `tls` needs a key and a certificate; `implicitTLS` needs `tls`; `limitExempt` lists networks.
 */
export function kitProblems(settings: ConnectionKitSettings): SettingsProblem[] {
  // In the schema's order (the kit's settings first), whatever order the validator found them in.
  const order = Object.keys(settings);
  const place = (field: string): number => (order.includes(field) ? order.indexOf(field) : order.length);
  const problems = problemsOf(validateSync(settings, { forbidUnknownValues: false })).sort((a, b) => place(a.field) - place(b.field));
  if (settings.logger !== undefined && typeof (settings.logger as { child?: unknown }).child !== 'function') {
    problems.push({ field: 'logger', reasons: ['logger must be a pino logger'] });
  }
  const tls = settings.tls as (TLSSettings & { key?: unknown; cert?: unknown; pfx?: unknown }) | undefined;
  if (
    tls !== undefined &&
    tls !== null &&
    typeof tls === 'object' &&
    tls.pfx === undefined &&
    (tls.key === undefined || tls.cert === undefined)
  ) {
    problems.push({ field: 'tls', reasons: ['tls needs key and cert (or pfx)'] });
  }
  if (settings.implicitTLS && settings.tls === undefined)
    problems.push({ field: 'implicitTLS', reasons: ['implicitTLS needs the tls setting'] });
  problems.push(...peerListProblems('limitExempt', settings.limitExempt));
  return problems;
}

/** Each key of `input` that is not in `known`, with the nearest known name when one is near. */
export function unknownKeys(input: object, known: readonly string[]): SettingsProblem[] {
  const problems: SettingsProblem[] = [];
  for (const key of Object.keys(input)) {
    if (known.includes(key)) continue;
    const meant = nearestName(key, known);
    problems.push({ field: key, reasons: [meant === undefined ? 'unknown setting' : `unknown setting, did you mean ${meant}?`] });
  }
  return problems;
}

function problemsOf(errors: ValidationError[], prefix = ''): SettingsProblem[] {
  return errors.flatMap((e) => {
    const field = prefix + e.property;
    const own = e.constraints === undefined ? [] : [{ field, reasons: Object.values(e.constraints) }];
    return [...own, ...problemsOf(e.children ?? [], `${field}.`)];
  });
}

let siroccoNames: string[] | undefined;

/**
 * Keys that name no setting. One within two edits of a known name (`hostnam`) is a typo and is
 * refused with the name it was meant to be, whatever the handler. When the handler declares its
 * settings (`@settingsSchema`, as every ready handler does), every other unknown key is refused
 * too; a handler without a schema keeps them (`this.settings.domain`).
 */
function unknownKeyProblems(input: object, schema: (new () => object) | undefined): SettingsProblem[] {
  siroccoNames ??= settingNames(ApplicationSettings);
  const known = new Set(schema === undefined ? siroccoNames : [...siroccoNames, ...settingNames(schema)]);
  const problems: SettingsProblem[] = [];
  for (const key of Object.keys(input)) {
    if (known.has(key)) continue;
    const meant = nearestName(key, known);
    if (meant !== undefined) problems.push({ field: key, reasons: [`unknown setting, did you mean ${meant}?`] });
    else if (schema !== undefined) {
      problems.push({
        field: key,
        reasons: [
          `unknown setting (neither Sirocco's nor ${schema.name}'s; a subclass with settings of its own declares them with @settingsSchema)`,
        ],
      });
    }
  }
  return problems;
}

/** Builds and validates the settings object; throws {@link SettingsError} naming every bad field. */
export function buildSettings<S extends object>(handlerClass: object, input: object): ApplicationSettings & S {
  if (typeof input !== 'object' || input === null) {
    throw new SettingsError([{ field: '(settings)', reasons: ['settings must be an object'] }]);
  }
  const settings = Object.assign(new ApplicationSettings(), input);
  const problems = kitProblems(settings);
  for (const field of ['authenticate', 'onConnect', 'onHelo'] as const) {
    if (settings[field] !== undefined && typeof settings[field] !== 'function') {
      problems.push({ field, reasons: [`${field} must be a function`] });
    }
  }
  for (const field of ['requireTLS', 'requestClientCertificate'] as const) {
    if (settings[field] === true && settings.tls === undefined) problems.push({ field, reasons: [`${field} needs the tls setting`] });
  }
  if (settings.implicitTLS && settings.requireTLS) {
    problems.push({ field: 'requireTLS', reasons: ['requireTLS is implied by implicitTLS; set one of them'] });
  }
  for (const field of ['proxyFrom', 'xclientFrom'] as const) problems.push(...peerListProblems(field, settings[field]));
  // A ready handler's list of networks allowed to relay (Relay, Deliver) is checked the same way.
  problems.push(...peerListProblems('trustedNetworks', (input as { trustedNetworks?: unknown }).trustedNetworks));
  if (settings.arcSeal !== undefined) {
    try {
      sealKey(settings.arcSeal);
    } catch (err) {
      problems.push({ field: 'arcSeal', reasons: [err instanceof Error ? err.message : String(err)] });
    }
  }
  if (settings.requireAuth && settings.authenticate === undefined) {
    problems.push({ field: 'requireAuth', reasons: ['requireAuth needs the authenticate setting'] });
  }
  const declared: unknown = Reflect.getMetadata(SCHEMA_KEY, handlerClass);
  const schema = typeof declared === 'function' ? (declared as new () => object) : undefined;
  if (schema !== undefined) {
    const own = Object.assign(new schema(), input);
    problems.push(...problemsOf(validateSync(own, { forbidUnknownValues: false })));
  }
  problems.push(...unknownKeyProblems(input, schema));
  if (problems.length > 0) throw new SettingsError(problems);
  return settings as ApplicationSettings & S;
}
