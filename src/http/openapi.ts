import path from 'node:path';
import type { Response, Router } from 'express';
import { z } from 'zod';
import {
  commentSchema,
  STORED_EVENT_TYPES,
  STREAM_EVENTS,
  STREAM_EVENT_SCHEMAS,
  userRefSchema,
  type StreamEventName,
} from '../events/catalogue';
import { ACCESS_TOKEN_COOKIE } from './demo-routes';
import { sendError } from './errors';
import { exactRouter } from './exact-routing';
import { OPERATIONS, type ErrorStatus, type Operation } from './openapi-operations';
import { albumSchema, errorBodySchema, trackSchema, userSchema } from './openapi-schemas';

/**
 * `GET /openapi.json`: an OpenAPI 3.1 document built from the route table (openapi-operations.ts)
 * and the zod schemas that validate requests and type the answers and events; nothing in it is
 * written as JSON by hand. `GET /docs` renders it (src/client/docs/docs-page.ts).
 */

type Json = Record<string, unknown>;

const OPENAPI_VERSION = '3.1.1';
const REF = (id: string) => `#/components/schemas/${id}`;

/** The schema name of each SSE event's `data`: `new_comment` → `NewCommentEvent`. */
const eventSchemaId = (name: StreamEventName) =>
  `${name.replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase())}Event`;

const ERROR_RESPONSES: Record<ErrorStatus, { name: string; description: string }> = {
  400: { name: 'BadRequest', description: 'bad input (`invalid_input`, `invalid_query`, …)' },
  401: { name: 'Unauthorized', description: 'missing, invalid or expired token' },
  403: { name: 'Forbidden', description: 'not allowed, or a cross-site write' },
  404: { name: 'NotFound', description: 'unknown track, comment or route' },
  409: { name: 'Conflict', description: 'the username is taken (`username_taken`)' },
  413: { name: 'PayloadTooLarge', description: 'body over 16 KB' },
  415: { name: 'UnsupportedMediaType', description: 'a body of another media type' },
  429: { name: 'TooManyRequests', description: 'rate limited or too many streams' },
  503: { name: 'Unavailable', description: 'database or bus unreachable, or draining' },
};
const RETRY_AFTER: readonly ErrorStatus[] = [429, 503];

const SECURITY = {
  user: [{ bearerJwt: [] }, { accessTokenCookie: [] }],
  admin: [{ adminToken: [] }],
  public: [],
} as const;

/** JSON Schema of zod schemas, each under its id in `components.schemas`. */
function componentSchemas(named: Map<z.ZodType, string>, io: 'input' | 'output'): Json {
  const registry = z.registry<{ id: string }>();
  for (const [schema, id] of named) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io,
    uri: REF,
    unrepresentable: 'any',
  }) as { schemas: Record<string, Json> };
  // zod puts schemas with an id that is not in the registry under `__shared`: list them above.
  if ('__shared' in schemas) throw new Error('a named schema is missing from the components');
  for (const schema of Object.values(schemas)) {
    // The document is the schema's context: no per-component dialect or (fragment) $id.
    delete schema.$schema;
    delete schema.$id;
  }
  return schemas;
}

/** A zod schema's own id (`.meta({ id })`), if it has one. */
const idOf = (schema: z.ZodType): string | undefined =>
  (z.globalRegistry.get(schema) as { id?: string } | undefined)?.id;

function inlineSchema(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input' }) as Json;
  delete json.$schema;
  return json;
}

const openApiPath = (expressPath: string) => expressPath.replace(/:([A-Za-z]+)/g, '{$1}');

/** The 3.1 idiom for SSE: an array of event objects, each `{event, id?, data}`. */
function eventStreamContent(stream: 'track' | 'user'): Json {
  const stored: readonly string[] = STORED_EVENT_TYPES;
  const events = STREAM_EVENTS[stream].map((name) => {
    const isStored = stored.includes(name);
    return {
      title: name,
      description: STREAM_EVENT_SCHEMAS[name].description,
      type: 'object',
      properties: {
        event: { const: name, description: 'the SSE `event:` field' },
        ...(isStored
          ? { id: { type: 'string', pattern: '^[0-9]+$', description: 'the SSE `id:` field' } }
          : {}),
        data: {
          type: 'string',
          description: 'the SSE `data:` field: one JSON object',
          contentMediaType: 'application/json',
          contentSchema: { $ref: REF(eventSchemaId(name)) },
        },
      },
      required: isStored ? ['event', 'id', 'data'] : ['event', 'data'],
    };
  });
  return {
    'text/event-stream': {
      schema: {
        type: 'array',
        description: 'The stream, one item per SSE event (and `: ping` comment lines between).',
        items: { oneOf: events },
      },
    },
  };
}

function operationObject(op: Operation, named: Map<z.ZodType, string>): Json {
  const parameters: Json[] = Object.entries(op.params ?? {}).map(([name, description]) => ({
    name,
    in: 'path',
    required: true,
    description,
    schema: { type: 'string' },
  }));
  for (const [name, field] of Object.entries(op.query?.shape ?? {})) {
    parameters.push({ name, in: 'query', schema: inlineSchema(field as z.ZodType) });
  }
  if (op.stream) {
    const resume = 'resume after this event id';
    parameters.push(
      { name: 'Last-Event-ID', in: 'header', description: resume, schema: { type: 'string' } },
      { name: 'last_event_id', in: 'query', description: resume, schema: { type: 'string' } },
    );
  }

  const responses: Json = {};
  for (const [status, answer] of Object.entries(op.answers)) {
    const response: Json = { description: answer.description };
    if (answer.json) {
      const id = named.get(answer.json);
      response.content = { 'application/json': { schema: id ? { $ref: REF(id) } : {} } };
    } else if (answer.other) {
      response.content = {
        [answer.other.mediaType]: {
          schema: { type: 'string', description: answer.other.description },
        },
      };
    } else if (op.stream) {
      response.content = eventStreamContent(op.stream);
    }
    if (answer.headers) {
      response.headers = Object.fromEntries(
        Object.entries(answer.headers).map(([name, description]) => [
          name,
          { description, schema: { type: 'string' } },
        ]),
      );
    }
    responses[status] = response;
  }
  for (const status of op.errors) {
    responses[status] = { $ref: `#/components/responses/${ERROR_RESPONSES[status].name}` };
  }

  const media = { json: 'application/json', form: 'application/x-www-form-urlencoded' } as const;
  return {
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    operationId: `${op.method}${op.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c?: string) => (c ?? '').toUpperCase())}`,
    security: SECURITY[op.caller],
    ...(parameters.length ? { parameters } : {}),
    ...(op.body
      ? {
          requestBody: {
            required: true,
            content: Object.fromEntries(
              op.body.kinds.map((kind) => [media[kind], { schema: { $ref: REF(op.body!.name) } }]),
            ),
          },
        }
      : {}),
    responses,
  };
}

/** Builds the document; pure, so a test can check it without a server. */
export function buildOpenApiDocument(): Json {
  const outputs = new Map<z.ZodType, string>([
    [userRefSchema, 'UserRef'],
    [commentSchema, 'Comment'],
    [errorBodySchema, 'Error'],
    // Named inside answers: listed so that each is a component of its own.
    [userSchema, 'User'],
    [albumSchema, 'Album'],
    [trackSchema, 'Track'],
  ]);
  for (const name of Object.keys(STREAM_EVENT_SCHEMAS) as StreamEventName[]) {
    outputs.set(STREAM_EVENT_SCHEMAS[name], eventSchemaId(name));
  }
  const inputs = new Map<z.ZodType, string>();
  for (const op of OPERATIONS) {
    for (const answer of Object.values(op.answers)) {
      if (!answer.json) continue;
      const id = idOf(answer.json);
      if (!id) throw new Error(`${op.method} ${op.path}: answer schema without .meta({ id })`);
      outputs.set(answer.json, id);
    }
    if (op.body) inputs.set(op.body.schema, op.body.name);
  }

  const paths: Record<string, Json> = {};
  for (const op of OPERATIONS) {
    (paths[openApiPath(op.path)] ??= {})[op.method] = operationObject(op, outputs);
  }

  const errorContent = { 'application/json': { schema: { $ref: REF('Error') } } };
  const retryAfter = {
    'Retry-After': { description: 'seconds to wait', schema: { type: 'string' } },
  };
  const responses = Object.fromEntries(
    (
      Object.entries(ERROR_RESPONSES) as unknown as [
        ErrorStatus,
        { name: string; description: string },
      ][]
    ).map(([status, { name, description }]) => [
      name,
      {
        description,
        content: errorContent,
        ...(RETRY_AFTER.includes(Number(status) as ErrorStatus) ? { headers: retryAfter } : {}),
      },
    ]),
  );

  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: 'trackcomments',
      version: '1',
      summary: 'Timed comments on audio tracks: REST writes, Server-Sent Events for live updates.',
      description:
        'Every error body is `{"error":{"code","message"}}`. Unknown body fields are refused. ' +
        'State-changing requests a browser marks as cross-site are `403 cross_origin_request`. ' +
        'Routes match exactly and case-sensitively. The two SSE responses list their events: ' +
        'each item of the stream schema is one event `{event, id, data}`, whose `data` is JSON ' +
        '(`contentSchema`).',
    },
    tags: [
      { name: 'comments' },
      { name: 'streams' },
      { name: 'admin', description: 'for the main application only (ADMIN_TOKEN)' },
      { name: 'operations' },
      { name: 'documentation' },
    ],
    paths,
    components: {
      schemas: { ...componentSchemas(outputs, 'output'), ...componentSchemas(inputs, 'input') },
      responses,
      securitySchemes: {
        bearerJwt: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'HS256 JWT signed with AUTH_SECRET; `sub` = user id; `exp` required.',
        },
        accessTokenCookie: {
          type: 'apiKey',
          in: 'cookie',
          name: ACCESS_TOKEN_COOKIE,
          description: 'The same JWT as a cookie (how EventSource authenticates).',
        },
        adminToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'The static ADMIN_TOKEN of the main application.',
        },
      },
    },
  };
}

/** Public and unchanging while the process runs: caches and proxies may keep it a while. */
const CACHE_CONTROL = 'public, max-age=300';

function sendPublicFile(res: Response, file: string): void {
  res.sendFile(file, { headers: { 'Cache-Control': CACHE_CONTROL } }, (err) => {
    if (err && !res.headersSent) sendError(res, 404, 'not_found', 'not built or not found');
  });
}

/** The document is the same for every app of the process: built once. */
let serialized: string | undefined;

/** `/openapi.json`, `/docs` and its script: public (no token), in every mode. GET/HEAD only. */
export function openApiRoutes(publicDir: string): Router {
  const document = (serialized ??= JSON.stringify(buildOpenApiDocument()));
  // The page is public/docs.html; its script is where tsconfig.client.json compiles it.
  const page = path.join(publicDir, 'docs.html');
  const script = path.join(publicDir, 'build', 'client', 'docs', 'docs-page.js');
  const router = exactRouter();
  router.get('/openapi.json', (_req, res) => {
    res.set('Cache-Control', CACHE_CONTROL).type('application/json').send(document);
  });
  router.get('/docs', (_req, res) => sendPublicFile(res, page));
  router.get('/docs/docs-page.js', (_req, res) => sendPublicFile(res, script));
  return router;
}
