/**
 * The OpenAPI 3.1 description of the inbox's HTTP API, served at `/api/v1/openapi.json`: clients
 * in any language can be generated from it, and a test checks it against the routes.
 */

const text = { type: 'string' } as const;
const strings = { type: 'array', items: text } as const;

const searchParameters = [
  {
    name: 'q',
    in: 'query',
    description: 'Contained, ignoring case, in the Subject, an address (envelope, From, To, Cc) or the text body.',
    schema: text,
  },
  { name: 'to', in: 'query', description: 'An envelope recipient (equal, ignoring case).', schema: text },
  { name: 'from', in: 'query', description: 'The envelope sender (equal, ignoring case).', schema: text },
  { name: 'subject', in: 'query', description: 'Contained in the Subject.', schema: text },
  { name: 'text', in: 'query', description: 'Contained in the text body.', schema: text },
  { name: 'tag', in: 'query', description: 'An X-Tag header value, or +tag in a recipient.', schema: text },
  { name: 'header', in: 'query', description: '"Name: value": the value contained in that header; repeatable.', schema: text },
  { name: 'since', in: 'query', description: 'Received at or after this ISO 8601 date.', schema: { type: 'string', format: 'date-time' } },
  { name: 'until', in: 'query', description: 'Received before this ISO 8601 date.', schema: { type: 'string', format: 'date-time' } },
];

/** What a list and a whole message both show. */
const headline = {
  id: text,
  mailFrom: text,
  rcptTos: strings,
  from: strings,
  to: strings,
  subject: text,
  receivedAt: { type: 'string', format: 'date-time' },
  size: { type: 'integer' },
} as const;

const id = { name: 'id', in: 'path', required: true, description: 'The queue id the client was told.', schema: text };

const problem = (description: string): object => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Problem' } } },
});
const ok = (description: string, schema: string): object => ({
  description,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } },
});

/** The document; `servers` is left to the client (it is wherever the API was reached). */
export const INBOX_OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'Sirocco inbox', version: '1', description: 'Mail caught by a Sirocco catcher, and the faults it injects.' },
  paths: {
    '/api/v1/messages': {
      get: {
        summary: 'List and search, newest first',
        parameters: [
          ...searchParameters,
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
          { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
        ],
        responses: { '200': ok('A page of messages', 'Page'), '400': problem('A bad query parameter, named') },
      },
      delete: { summary: 'Delete every message', responses: { '204': { description: 'Deleted' } } },
    },
    '/api/v1/messages/{id}': {
      get: {
        summary: 'One message',
        parameters: [id],
        responses: { '200': ok('The message', 'Message'), '404': problem('No such message') },
      },
      delete: {
        summary: 'Delete one message',
        parameters: [id],
        responses: { '204': { description: 'Deleted' }, '404': problem('No such message') },
      },
    },
    '/api/v1/messages/{id}/raw': {
      get: {
        summary: 'The message as received',
        parameters: [id],
        responses: { '200': { description: 'Its bytes', content: { 'message/rfc822': {} } }, '404': problem('No such message') },
      },
    },
    '/api/v1/messages/{id}/html': {
      get: {
        summary: "The message's HTML, under a policy that sandboxes it (no script, no remote content unless asked)",
        parameters: [id, { name: 'images', in: 'query', description: '"remote": let remote images load.', schema: { enum: ['remote'] } }],
        responses: {
          '200': { description: 'The HTML', content: { 'text/html': {} } },
          '400': problem('A bad query parameter, named'),
          '404': problem('No such message, or it has no HTML'),
        },
      },
    },
    '/api/v1/messages/{id}/attachments/{index}': {
      get: {
        summary: "An attachment's bytes",
        parameters: [id, { name: 'index', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } }],
        responses: {
          '200': { description: 'Its bytes', content: { 'application/octet-stream': {} } },
          '404': problem('No such message or attachment'),
        },
      },
    },
    '/api/v1/messages/{id}/release': {
      post: {
        summary: 'Send the message on to an SMTP server, its bytes unchanged',
        parameters: [id],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  to: { ...strings, description: 'The recipients; the caught ones by default.' },
                  host: { type: 'string', description: 'Required unless the server has a release target.' },
                  port: { type: 'integer', minimum: 1, maximum: 65535 },
                },
              },
            },
          },
        },
        responses: {
          '200': ok('Sent: the server that took it and its reply', 'Released'),
          '400': problem('A bad field, named'),
          '404': problem('No such message'),
          '502': problem('The server refused it or could not be reached'),
        },
      },
    },
    '/api/v1/wait': {
      get: {
        summary: 'The first matching message, already here or arriving within the timeout',
        parameters: [
          ...searchParameters,
          { name: 'timeout', in: 'query', schema: { type: 'integer', minimum: 0, maximum: 300000, default: 5000 } },
        ],
        responses: {
          '200': ok('The message', 'Message'),
          '400': problem('A bad query parameter, named'),
          '408': ok('None arrived in time: what did arrive, newest first', 'Timeout'),
          '503': problem('Too many waits open'),
        },
      },
    },
    '/api/v1/faults': {
      get: {
        summary: 'The faults still to strike',
        responses: { '200': ok('The faults', 'Faults'), '404': problem('No faults on this server') },
      },
      post: {
        summary: 'Add a fault (with seed and rate: a random one)',
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/NewFault' } } } },
        responses: {
          '201': ok('The faults', 'Faults'),
          '400': problem('A bad field, named'),
          '413': problem('A body over 16 KiB'),
          '415': problem('A body that is not application/json'),
        },
      },
      delete: { summary: 'Clear the faults', responses: { '204': { description: 'Cleared' } } },
    },
    '/api/v1/events': {
      get: {
        summary: 'Server-Sent Events: message (a summary), deleted ({ ids }), cleared ({})',
        responses: {
          '200': { description: 'An event stream', content: { 'text/event-stream': {} } },
          '503': problem('Too many streams open'),
        },
      },
    },
    '/api/v1/info': {
      get: {
        summary: 'What this server is: how many messages it holds, where it releases to, whether it injects faults',
        responses: { '200': ok('The server', 'Info') },
      },
    },
    '/api/v1/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
  },
  components: {
    securitySchemes: { basic: { type: 'http', scheme: 'basic', description: 'Only when the server was given auth.' } },
    schemas: {
      Problem: { type: 'object', required: ['error'], properties: { error: text, parameter: text } },
      Summary: { type: 'object', properties: { ...headline, attachments: { type: 'integer' } } },
      Page: {
        type: 'object',
        properties: {
          total: { type: 'integer' },
          offset: { type: 'integer' },
          count: { type: 'integer' },
          messages: { type: 'array', items: { $ref: '#/components/schemas/Summary' } },
        },
      },
      Message: {
        type: 'object',
        properties: {
          ...headline,
          cc: strings,
          session: {
            type: 'object',
            properties: { remoteAddress: text, heloName: text, secure: { type: 'boolean' }, user: { type: ['string', 'null'] } },
          },
          headers: { type: 'object', additionalProperties: text },
          text,
          html: { type: ['string', 'null'] },
          attachments: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                index: { type: 'integer' },
                filename: { type: ['string', 'null'] },
                contentType: text,
                size: { type: 'integer' },
              },
            },
          },
        },
      },
      Info: {
        type: 'object',
        properties: {
          messages: { type: 'integer' },
          releaseTo: { oneOf: [{ type: 'null' }, { type: 'object', properties: { host: text, port: { type: 'integer' } } }] },
          faults: { type: 'boolean' },
        },
      },
      Released: {
        type: 'object',
        properties: { released: text, host: text, port: { type: 'integer' }, to: strings, response: text },
      },
      Timeout: {
        type: 'object',
        properties: { error: text, arrived: { type: 'array', items: { $ref: '#/components/schemas/Summary' } } },
      },
      Faults: {
        type: 'object',
        properties: {
          faults: { type: 'array', items: { type: 'object' } },
          pending: { type: 'integer' },
          injected: { type: 'integer' },
        },
      },
      NewFault: {
        type: 'object',
        required: ['at'],
        additionalProperties: false,
        properties: {
          at: { enum: ['connect', 'helo', 'mail', 'rcpt', 'data', 'after-data'] },
          reply: { oneOf: [{ type: 'integer', minimum: 400, maximum: 599 }, { const: 'none' }] },
          drop: { type: 'boolean' },
          delayMs: { type: 'number', minimum: 0 },
          times: { type: 'integer', minimum: 1 },
          recipient: text,
          recipientPattern: { type: 'string', description: 'A regular expression, matched ignoring case.' },
          seed: { type: 'integer' },
          rate: { type: 'number', minimum: 0, maximum: 1 },
        },
      },
    },
  },
};
