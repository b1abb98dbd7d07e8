import { isUtf8 } from 'node:buffer';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { HttpError, describeZodError } from './errors';
import type { CommentCursor } from '../domain/types';

export type BodyKind = 'json' | 'form';

/** Largest request body accepted (JSON or form). */
export const BODY_LIMIT_BYTES = 16 * 1024;

const notUtf8 = () => new HttpError(400, 'invalid_input', 'request body is not valid UTF-8');

/**
 * Body parsers' `verify` for JSON: a UTF-8 body must be UTF-8. Decoding would turn what is not
 * into U+FFFD and store text the client never wrote (contract section 7: text is well-formed,
 * otherwise 400). Other Unicode charsets decode lone surrogates as such, which the field
 * validation refuses.
 */
export function refuseNonUtf8Json(_req: unknown, _res: unknown, body: Buffer, charset: string) {
  if (/^utf-?8$/i.test(charset) && !isUtf8(body)) throw notUtf8();
}

const PERCENT = 0x25;
const hexValue = (byte: number): number => {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
};

/**
 * The bytes a form body stands for: `%XX` escapes decoded, everything else as sent (`+` and
 * malformed escapes are ASCII either way). Separators are ASCII too, so these bytes are UTF-8
 * exactly when every name and value decodes without U+FFFD standing in for something.
 */
export function formBodyBytes(body: Buffer): Buffer {
  if (!body.includes(PERCENT)) return body;
  const out = Buffer.allocUnsafe(body.length);
  let n = 0;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i]!;
    if (byte === PERCENT && i + 2 < body.length) {
      const hi = hexValue(body[i + 1]!);
      const lo = hexValue(body[i + 2]!);
      if (hi >= 0 && lo >= 0) {
        out[n++] = hi * 16 + lo;
        i += 2;
        continue;
      }
    }
    out[n++] = byte;
  }
  return out.subarray(0, n);
}

/** Body parsers' `verify` for forms (always UTF-8): what the escapes stand for must be UTF-8. */
export function refuseNonUtf8Form(_req: unknown, _res: unknown, body: Buffer) {
  if (!isUtf8(formBodyBytes(body))) throw notUtf8();
}

/**
 * The JSON body parser (strict: an object or array; UTF-8; `BODY_LIMIT_BYTES`): the app mounts
 * it, and the lean comment path reads its bodies with it, so both parse alike.
 */
export const jsonBodyParser = () =>
  express.json({
    limit: BODY_LIMIT_BYTES,
    type: ['application/json', 'application/*+json'],
    verify: refuseNonUtf8Json,
  });

/** The form body parser the app mounts (flat fields, at most 20, `BODY_LIMIT_BYTES`). */
export const formBodyParser = () =>
  express.urlencoded({
    extended: false,
    limit: BODY_LIMIT_BYTES,
    parameterLimit: 20,
    verify: refuseNonUtf8Form,
  });

/**
 * Refuses bodies of other media types with 415 (before parsing). A request
 * with no body at all passes with `{}` so validation can name what is missing.
 */
export function acceptBodies(...kinds: BodyKind[]) {
  return function acceptBodies(req: Request, _res: Response, next: NextFunction) {
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    if (!hasBody) return next();
    const ok =
      (kinds.includes('json') && req.is(['application/json', 'application/*+json'])) ||
      (kinds.includes('form') && req.is('application/x-www-form-urlencoded'));
    if (!ok) {
      const names = kinds.map((k) =>
        k === 'json' ? 'application/json' : 'application/x-www-form-urlencoded',
      );
      return next(
        new HttpError(415, 'unsupported_media_type', `body must be ${names.join(' or ')}`),
      );
    }
    next();
  };
}

const isForm = (req: Request) =>
  req.is('application/x-www-form-urlencoded') === 'application/x-www-form-urlencoded';

/** A plain decimal number as a form sends it (not hex, binary or "Infinity", which Number() also reads). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Form fields arrive as strings: turn the named ones into numbers/booleans
 * when they look like one (otherwise zod reports the type error).
 */
function coerceFormFields(
  body: Record<string, unknown>,
  types: Record<string, 'number' | 'boolean' | 'nullable-int'>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...body };
  for (const [key, type] of Object.entries(types)) {
    const v = out[key];
    if (typeof v !== 'string') continue;
    const s = v.trim();
    if (type === 'boolean' && (s === 'true' || s === 'false')) out[key] = s === 'true';
    else if (type === 'nullable-int' && s === '') out[key] = null;
    else if (type !== 'boolean' && DECIMAL.test(s) && Number.isFinite(Number(s)))
      out[key] = Number(s);
  }
  return out;
}

/** Validates `req.body` against a strict zod schema (unknown fields are refused). */
export function parseBody<S extends z.ZodType>(
  req: Request,
  schema: S,
  formTypes: Record<string, 'number' | 'boolean' | 'nullable-int'> = {},
): z.output<S> {
  const body: unknown = req.body ?? {};
  return validateBody(
    body,
    schema,
    isForm(req) ? (b) => coerceFormFields(b, formTypes) : undefined,
  );
}

/** Validates a parsed body (an object; `coerce` adapts form fields first) against a strict schema. */
export function validateBody<S extends z.ZodType>(
  body: unknown,
  schema: S,
  coerce?: (body: Record<string, unknown>) => Record<string, unknown>,
): z.output<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'invalid_input', 'body must be a JSON object');
  }
  const input = coerce ? coerce(body as Record<string, unknown>) : body;
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new HttpError(400, 'invalid_input', describeZodError(parsed.error));
  return parsed.data;
}

export function parseQuery<S extends z.ZodType>(req: Request, schema: S): z.output<S> {
  const parsed = schema.safeParse(req.query ?? {});
  if (!parsed.success) throw new HttpError(400, 'invalid_query', describeZodError(parsed.error));
  return parsed.data;
}

// ---- field schemas (contract sections 3 and 4) -------------------------------------------------

/**
 * Text the database can store as sent: well-formed Unicode (a lone surrogate would be stored
 * as U+FFFD, and `jsonb` refuses its JSON escape) and no NUL (PostgreSQL text cannot hold it).
 * Refused here so that no client text ever becomes a database error.
 */
export const isStorableText = (s: string): boolean => s.isWellFormed() && !s.includes('\u0000');

const STORABLE_TEXT = 'must be well-formed Unicode text without NUL characters';

// Trimmed in place (not a transform) so that the OpenAPI document can state the length limits.
export const contentField = z
  .string({ error: 'content is required and must be a string' })
  .refine(isStorableText, `content ${STORABLE_TEXT}`)
  .trim()
  .min(1, 'content must not be empty')
  .max(2000, 'content must be at most 2000 characters');

export const timestampField = z
  .number({ error: 'timestamp must be a number of seconds' })
  .finite('timestamp must be finite')
  .min(0, 'timestamp must be >= 0');

const positiveInt = (what: string) =>
  z
    .number({ error: `${what} must be an integer` })
    .int(`${what} must be an integer`)
    .min(1, `${what} must be positive`)
    .max(2147483647, `${what} is too large`);

export const createCommentBody = z.strictObject({
  content: contentField,
  timestamp: timestampField.default(0),
  parent_id: positiveInt('parent_id').nullable().default(null),
});
export const createCommentFormTypes = { timestamp: 'number', parent_id: 'nullable-int' } as const;

export const editCommentBody = z.strictObject({ content: contentField });

export const typingBody = z.strictObject({
  is_typing: z.boolean({ error: 'is_typing must be true or false' }),
});

// The alphabet is ASCII: no lone surrogate or NUL can pass it.
export const usernameField = z
  .string({ error: 'username is required' })
  .regex(/^[A-Za-z0-9_]{1,32}$/, 'username must be 1-32 characters of A-Z, a-z, 0-9 or _');

export const adminUserBody = z.strictObject({
  username: usernameField,
  is_creator: z.boolean().default(false),
  is_team: z.boolean().default(false),
});

const titleField = z
  .string({ error: 'title is required' })
  .refine(isStorableText, `title ${STORABLE_TEXT}`)
  .trim()
  .min(1, 'title must not be empty')
  .max(300, 'title must be at most 300 characters');

export const adminAlbumBody = z.strictObject({
  title: titleField,
  created_by_id: positiveInt('created_by_id'),
});

export const adminTrackBody = z.strictObject({
  title: titleField,
  album_id: positiveInt('album_id'),
  duration_s: z
    .number({ error: 'duration_s must be a number' })
    .finite()
    .positive('duration_s must be positive')
    .nullable()
    .default(null),
});

// ---- path parameters --------------------------------------------------------------------------

/** Contract section 7: track ids are opaque strings of 1-128 characters of this alphabet. */
const TRACK_ID = /^[A-Za-z0-9\-._~:]{1,128}$/;
const TRACK_ID_RULE = 'trackId must be 1-128 characters of A-Z a-z 0-9 - . _ ~ :';

/**
 * The one definition of a track id (express routes and the lean paths alike); anything
 * outside the alphabet cannot name a track.
 */
export const isTrackId = (id: string): boolean => TRACK_ID.test(id);

/** The `:trackId` route parameter; 404 when it cannot name a track. */
export function trackIdParam(req: Request): string {
  const id = String(req.params.trackId ?? '');
  if (!isTrackId(id)) throw new HttpError(404, 'not_found', 'track not found');
  return id;
}

/** A decimal id that fits PostgreSQL's int4, or null. */
function positiveInt32(raw: string): number | null {
  return /^[1-9][0-9]{0,9}$/.test(raw) && Number(raw) <= 2147483647 ? Number(raw) : null;
}

export function intIdParam(req: Request, name: string, what: string): number {
  const id = positiveInt32(String(req.params[name] ?? ''));
  if (id === null) throw new HttpError(404, 'not_found', `${what} not found`);
  return id;
}

/** Admin ids are written by the main application: a malformed one is bad input. */
export function adminIntIdParam(req: Request, name: string): number {
  const id = positiveInt32(String(req.params[name] ?? ''));
  if (id === null) throw new HttpError(400, 'invalid_id', `${name} must be a positive integer`);
  return id;
}

export function adminTrackIdParam(req: Request): string {
  const id = String(req.params.trackId ?? '');
  if (!isTrackId(id)) throw new HttpError(400, 'invalid_id', TRACK_ID_RULE);
  return id;
}

// ---- list query and cursors -------------------------------------------------------------------

export const listQuery = z.strictObject({
  limit: z.coerce
    .number({ error: 'limit must be an integer' })
    .int('limit must be an integer')
    .min(1, 'limit must be between 1 and 200')
    .max(200, 'limit must be between 1 and 200')
    .default(50),
  cursor: z.string().max(200).optional(),
  order: z
    .enum(['timestamp', 'created'], { error: 'order must be "timestamp" or "created"' })
    .default('timestamp'),
});

export function encodeCursor(c: CommentCursor): string {
  return Buffer.from(
    JSON.stringify([c.order === 'timestamp' ? 't' : 'c', c.timestamp, c.id]),
  ).toString('base64url');
}

export function decodeCursor(raw: string | undefined): CommentCursor | null {
  if (raw === undefined || raw === '') return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (
      Array.isArray(v) &&
      v.length === 3 &&
      (v[0] === 't' || v[0] === 'c') &&
      typeof v[1] === 'number' &&
      Number.isFinite(v[1]) &&
      Number.isInteger(v[2]) &&
      // Comment ids are int4: anything else cannot come from us (and would fail in the query).
      v[2] >= 0 &&
      v[2] <= 2147483647
    ) {
      return { order: v[0] === 't' ? 'timestamp' : 'created', timestamp: v[1], id: v[2] };
    }
  } catch {
    // fall through
  }
  throw new HttpError(400, 'invalid_cursor', 'cursor is not one this API returned');
}
