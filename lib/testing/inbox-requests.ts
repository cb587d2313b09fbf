/**
 * What the inbox's HTTP API reads from a request: the search of a list or a wait, a JSON body (a
 * fault, a release), and the problem a bad one is answered with, naming the parameter or field.
 */
import type { IncomingMessage } from 'node:http';
import type { CaughtMessage } from './caught.js';
import type { Fault, FaultStep, RandomFaults } from './faults.js';
import { describeQuery, matchesQuery, type InboxQuery } from './inbox-query.js';

/** The largest request body (a fault), in bytes. */
const MAX_BODY = 16 * 1024;

/** A request's mistake, answered with its status and a JSON body naming it. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly parameter?: string,
  ) {
    super(message);
  }
}

/** A request body of at most {@link MAX_BODY} bytes, as JSON; anything else is a 4xx naming why. */
export async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) throw new HttpProblem(415, 'the body must be application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpProblem(413, `the body must be at most ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpProblem(400, 'the body is not JSON');
  }
}

/** A body's fields, when it is a JSON object with no field but the `known` ones. */
export function fieldsOf(body: unknown, known: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpProblem(400, 'the body must be a JSON object');
  const given = body as Record<string, unknown>;
  for (const key of Object.keys(given)) if (!known.includes(key)) throw new HttpProblem(400, `unknown field ${key}`, key);
  return given;
}

const FAULT_FIELDS = ['at', 'reply', 'drop', 'delayMs', 'times', 'recipient', 'recipientPattern', 'seed', 'rate'];

/** A fault from a request body: a field of the wrong type is named here, a wrong value by {@link Faults.add}. */
export function faultFrom(body: unknown): Fault | RandomFaults {
  const given = fieldsOf(body, FAULT_FIELDS);
  const typed = (key: string, type: string): void => {
    if (given[key] !== undefined && typeof given[key] !== type) throw new HttpProblem(400, `field ${key} must be a ${type}`, key);
  };
  typed('at', 'string');
  typed('drop', 'boolean');
  for (const key of ['delayMs', 'times', 'seed', 'rate']) typed(key, 'number');
  typed('recipient', 'string');
  typed('recipientPattern', 'string');
  if (given.reply !== undefined && given.reply !== 'none' && typeof given.reply !== 'number')
    throw new HttpProblem(400, 'field reply must be a number or "none"', 'reply');
  if (given.at === undefined) throw new HttpProblem(400, 'field at is required', 'at');
  if (given.recipient !== undefined && given.recipientPattern !== undefined)
    throw new HttpProblem(400, 'give recipient or recipientPattern, not both', 'recipientPattern');
  let recipient = given.recipient as string | RegExp | undefined;
  if (typeof given.recipientPattern === 'string') {
    try {
      recipient = new RegExp(given.recipientPattern, 'i');
    } catch {
      throw new HttpProblem(400, 'field recipientPattern is not a regular expression', 'recipientPattern');
    }
  }
  const reply: number | 'none' | undefined = given.reply === 'none' ? 'none' : typeof given.reply === 'number' ? given.reply : undefined;
  const fault = {
    at: given.at as FaultStep,
    ...(reply === undefined ? {} : { reply }),
    ...(given.drop === undefined ? {} : { drop: given.drop as boolean }),
    ...(given.delayMs === undefined ? {} : { delayMs: given.delayMs as number }),
    ...(recipient === undefined ? {} : { recipient }),
  };
  if (given.seed !== undefined || given.rate !== undefined) {
    if (given.times !== undefined) throw new HttpProblem(400, 'field times is not for a random fault', 'times');
    return { ...fault, seed: given.seed as number, rate: given.rate as number };
  }
  return { ...fault, ...(given.times === undefined ? {} : { times: given.times as number }) };
}

/** The search parameters of a list and a wait. */
export const SEARCH = ['q', 'to', 'from', 'subject', 'text', 'tag', 'header', 'since', 'until'];

/** The search of a list or a wait, as an inbox query; a parameter not known, or given badly, is a 400 naming it. */
export function parseSearch(params: URLSearchParams, also: readonly string[]): InboxQuery {
  for (const name of params.keys()) {
    if (!SEARCH.includes(name) && !also.includes(name)) throw new HttpProblem(400, `unknown query parameter ${name}`, name);
    if (name !== 'header' && params.getAll(name).length > 1)
      throw new HttpProblem(400, `query parameter ${name} given more than once`, name);
  }
  const text = (name: string): string | undefined => {
    const value = params.get(name);
    if (value === '') throw new HttpProblem(400, `query parameter ${name} is empty`, name);
    return value ?? undefined;
  };
  const header: Record<string, string> = {};
  for (const value of params.getAll('header')) {
    const colon = value.indexOf(':');
    if (colon <= 0) throw new HttpProblem(400, 'query parameter header must be "Name: value"', 'header');
    header[value.slice(0, colon).trim().toLowerCase()] = value.slice(colon + 1).trim();
  }
  const since = date(params, 'since');
  const until = date(params, 'until');
  const anywhere = text('q')?.toLowerCase();
  const fields = { to: text('to'), from: text('from'), subject: text('subject'), text: text('text'), tag: text('tag') };
  return (message: CaughtMessage): boolean =>
    matchesQuery(message, {
      ...(fields.to === undefined ? {} : { to: fields.to }),
      ...(fields.from === undefined ? {} : { from: fields.from }),
      ...(fields.subject === undefined ? {} : { subject: fields.subject }),
      ...(fields.text === undefined ? {} : { text: fields.text }),
      ...(fields.tag === undefined ? {} : { tag: fields.tag }),
      header,
    }) &&
    (anywhere === undefined || mentions(message, anywhere)) &&
    (since === undefined || message.receivedAt.getTime() >= since) &&
    (until === undefined || message.receivedAt.getTime() < until);
}

/** Whether `words` (lower case) is in the message's subject, addresses (envelope and header) or text, ignoring case. */
function mentions(message: CaughtMessage, words: string): boolean {
  const fields = [message.subject, message.mailFrom, ...message.rcptTos, ...message.from, ...message.to, ...message.cc, message.text];
  return fields.some((field) => field.toLowerCase().includes(words));
}

export function describeSearch(params: URLSearchParams): string {
  const query: Record<string, string | string[]> = {};
  for (const name of SEARCH) {
    const values = params.getAll(name);
    if (values.length > 0) query[name] = name === 'header' ? values : (values[0] ?? '');
  }
  return describeQuery(query);
}

export function integer(params: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const value = params.get(name);
  if (value === null) return undefined;
  const n = /^\d{1,16}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new HttpProblem(400, `query parameter ${name} must be a whole number from ${min} to ${max}`, name);
  return n;
}

function date(params: URLSearchParams, name: string): number | undefined {
  const value = params.get(name);
  if (value === null) return undefined;
  const time = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(time)) throw new HttpProblem(400, `query parameter ${name} must be an ISO 8601 date`, name);
  return time;
}
