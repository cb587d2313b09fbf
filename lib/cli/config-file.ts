/**
 * The `sirocco --config FILE` configuration file: YAML holding what the command line can say,
 * under the same names (`listen`, `handler`, `tls-key`, `proxy-from`, `workers` …) and the
 * application's settings under `settings:` (what `--set` gives). The file becomes command-line
 * arguments placed before the real ones, so a flag given on the command line wins, and one
 * parser and one schema check both. Every error found in the file names its line.
 */
import { readFileSync } from 'node:fs';
import { Document, isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { nearestName } from '../app/setting-names.js';
import { UsageError } from './usage.js';

/** What a configuration file says, as arguments, with where each key stands in the file. */
export interface ConfigFile {
  readonly path: string;
  /** The file as command-line arguments. */
  readonly args: readonly string[];
  /** The line of each option (`listen`) and each setting (`settings.maxRecipients`). */
  readonly lines: ReadonlyMap<string, number>;
}

/** The options a file may hold: the command line's own, less those that only make sense there. */
export function fileOptions(
  options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>,
): Map<string, { type: 'string' | 'boolean'; multiple?: boolean }> {
  return new Map(Object.entries(options).filter(([name]) => !['help', 'set', 'config', 'check-config'].includes(name)));
}

/** Reads and checks a configuration file; throws {@link UsageError} naming the file and line. */
export function readConfigFile(path: string, options: ReturnType<typeof fileOptions>): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--config: ${err instanceof Error ? err.message : String(err)}`);
  }
  const counter = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (node: Node | null | undefined): number => (node?.range == null ? 1 : counter.linePos(node.range[0]).line);
  const fail = (node: Node | null | undefined, message: string): never => {
    throw new UsageError(`${path}:${lineOf(node)}: ${message}`);
  };
  const syntax = doc.errors[0];
  if (syntax !== undefined) throw new UsageError(`${path}:${counter.linePos(syntax.pos[0]).line}: ${syntax.message.split('\n')[0] ?? ''}`);
  const args: string[] = [];
  const lines = new Map<string, number>();
  if (doc.contents === null) return { path, args, lines };
  if (!isMap(doc.contents)) fail(doc.contents, 'expected a mapping of option names to values');
  const root = doc.contents as unknown as { items: { key: Node; value: Node | null }[] };
  for (const { key, value } of root.items) {
    const name = isScalar(key) ? String(key.value) : '';
    lines.set(name, lineOf(key));
    if (name === 'settings') {
      settingsArgs(value, args, lines, lineOf, fail);
      continue;
    }
    const option = options.get(name);
    if (option === undefined) {
      const near = nearestName(name, [...options.keys(), 'settings']);
      return fail(key, `unknown option ${name}${near === undefined ? '' : `, did you mean ${near}?`}`);
    }
    const values = isSeq(value) && option.multiple === true ? value.items : [value];
    for (const item of values as (Node | null)[]) {
      const v: unknown = isScalar(item) ? item.value : undefined;
      if (option.type === 'boolean') {
        if (typeof v !== 'boolean') fail(item ?? key, `${name}: expected true or false`);
        if (v === true) args.push(`--${name}`);
      } else if (typeof v === 'string' || typeof v === 'number') {
        args.push(`--${name}`, String(v));
      } else {
        fail(item ?? key, `${name}: expected ${option.multiple === true ? 'a value or a list of values' : 'a value'}`);
      }
    }
  }
  return { path, args, lines };
}

function settingsArgs(
  value: Node | null,
  args: string[],
  lines: Map<string, number>,
  lineOf: (node: Node | null | undefined) => number,
  fail: (node: Node | null | undefined, message: string) => never,
): void {
  if (value === null) return;
  if (!isMap(value)) fail(value, 'settings: expected a mapping of setting names to values');
  for (const item of (value as unknown as { items: { key: Node; value: Node | null }[] }).items) {
    const name = isScalar(item.key) ? String(item.key.value) : '';
    lines.set(`settings.${name}`, lineOf(item.key));
    const json: unknown = item.value === null ? null : (item.value as unknown as { toJSON(): unknown }).toJSON();
    args.push('--set', `${name}=${JSON.stringify(json)}`);
  }
}

/**
 * An error message with the file's line in front, when the option or setting it names came from
 * the file (and was not given again on the command line).
 */
export function locate(message: string, file: ConfigFile | undefined, given: (name: string) => boolean): string {
  if (file === undefined) return message;
  const option = /^--([a-z0-9-]+)/.exec(message)?.[1];
  if (option !== undefined && !given(option)) {
    const line = file.lines.get(option);
    if (line !== undefined) return `${file.path}:${line}: ${message}`;
  }
  return message;
}

/** A settings problem with the file's line of the setting, when the file set it. */
export function settingLine(field: string, file: ConfigFile | undefined): string {
  const line = file?.lines.get(`settings.${field.split('.')[0] ?? field}`);
  return line === undefined || file === undefined ? '' : `${file.path}:${line}: `;
}

/** The command line with a `--config` file's arguments put in front of its own. */
export interface Arguments {
  readonly args: readonly string[];
  readonly file: ConfigFile | undefined;
  /** `--check-config`: validate, print the effective configuration, exit. */
  readonly check: boolean;
  /** Whether the command line itself gave an option (then the file's is not the one used). */
  readonly given: (name: string) => boolean;
}

/** Takes `--config FILE` and `--check-config` out of the arguments and puts the file's in front. */
export function withConfigFile(args: readonly string[], options: Parameters<typeof fileOptions>[0]): Arguments {
  const own: string[] = [];
  let path: string | undefined;
  let check = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--check-config') check = true;
    else if (arg === '--config') path = args[++i] ?? '';
    else if (arg.startsWith('--config=')) path = arg.slice('--config='.length);
    else own.push(arg);
  }
  const names = new Set(own.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0] ?? ''));
  const given = (name: string): boolean => names.has(name);
  if (path === '') throw new UsageError('--config: expected a file name');
  if (path === undefined) {
    if (check) throw new UsageError('--check-config needs --config FILE');
    return { args: own, file: undefined, check, given };
  }
  const file = readConfigFile(path, fileOptions(options));
  // A list option given on the command line replaces the file's list rather than adding to it.
  const fromFile: string[] = [];
  for (let i = 0; i < file.args.length; i += 1) {
    const name = (file.args[i] ?? '').slice(2);
    const width = options[name]?.type === 'string' ? 2 : 1;
    const replaced = options[name]?.multiple === true && name !== 'set' && given(name);
    if (!replaced) fromFile.push(...file.args.slice(i, i + width));
    i += width - 1;
  }
  return { args: [...fromFile, ...own], file, check, given };
}

const SECRET = /pass(?:word)?|secret|token|credential|(?:^|[a-z])Key$|^key$/i;

/** The effective configuration as `--check-config` prints it: YAML, secrets masked. */
export function describeConfiguration(plan: { listen: unknown; handler: string; workers: number | undefined }, settings: object): string {
  const shown: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(settings) as [string, unknown][]) {
    if (name === 'logger' || typeof value === 'function' || value === undefined) continue;
    shown[name] = name === 'tls' ? '(key and certificate loaded)' : SECRET.test(name) ? '********' : value;
  }
  const doc = new Document({ listen: plan.listen, handler: plan.handler, workers: plan.workers ?? null, settings: shown });
  return doc.toString();
}
