import type { z } from 'zod';
import { HOT_ROUTES, API_PREFIX } from './hot-endpoints';
import {
  adminAlbumBody,
  adminTrackBody,
  adminUserBody,
  createCommentBody,
  editCommentBody,
  listQuery,
  typingBody,
  type BodyKind,
} from './validation';
import {
  albumAnswerSchema,
  commentAnswerSchema,
  commentPageSchema,
  healthSchema,
  readinessSchema,
  trackAnswerSchema,
  typingAnswerSchema,
  userAnswerSchema,
} from './openapi-schemas';

/**
 * Every endpoint the service serves, in one table: the OpenAPI document (openapi.ts) is built
 * from it, and test/openapi.test.ts checks it against the routes the built app really has.
 * Paths are written as express writes them (`:param`); schemas are the ones that validate.
 */

/** Who may call: a user (bearer JWT or cookie), the main application (admin token), anyone. */
export type Caller = 'user' | 'admin' | 'public';

/** The error answers an operation can give, by status (the body is always the Error schema). */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 503;

export interface Answer {
  description: string;
  /** A JSON body (response schema from zod); absent for 204 or non-JSON answers. */
  json?: z.ZodType;
  /** A non-JSON body: its media type and a description of it. */
  other?: { mediaType: string; description: string };
  /** Response headers set on this answer, by name: description. */
  headers?: Record<string, string>;
}

export interface Operation {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string;
  tag: 'comments' | 'streams' | 'admin' | 'operations' | 'documentation';
  summary: string;
  description?: string;
  caller: Caller;
  /** Path parameters (by name): what each is. */
  params?: Record<string, string>;
  query?: z.ZodObject;
  body?: { schema: z.ZodType; kinds: readonly BodyKind[]; name: string };
  /** The answers other than the error body, by status. */
  answers: Record<number, Answer>;
  errors: readonly ErrorStatus[];
  /** Set on the two SSE endpoints: which stream's events the response carries. */
  stream?: 'track' | 'user';
}

const TRACK_ID = 'opaque track id: 1-128 characters of A-Z a-z 0-9 - . _ ~ :';
const COMMENT_ID = 'comment id (positive integer)';
const api = (path: string) => `${API_PREFIX}${path}`;

const STREAM_DESCRIPTION =
  'Server-Sent Events. The first lines are a `retry:` hint and the `connected` event; a ' +
  '`: ping` comment line comes at least every HEARTBEAT_MS. Resume with `Last-Event-ID` (header ' +
  'or `?last_event_id=`): every stored event after it, in order, then live events; `reset` ' +
  'first when history no longer covers it. The stream ends within seconds of the token `exp`.';

const STREAM_ANSWER = {
  description: 'the event stream (open until closed); never compressed',
  headers: { 'Cache-Control': '`no-cache`', 'X-Accel-Buffering': '`no` (proxies must not buffer)' },
};

export const OPERATIONS: readonly Operation[] = [
  {
    method: 'get',
    path: api('/tracks/:trackId/comments'),
    tag: 'comments',
    summary: "List a track's comments",
    description: 'Replies included (`parent_id`). `next_cursor` is opaque and bound to its order.',
    caller: 'user',
    params: { trackId: TRACK_ID },
    query: listQuery,
    answers: { 200: { description: 'a page of comments', json: commentPageSchema } },
    errors: [400, 401, 404, 503],
  },
  {
    method: 'post',
    path: api(HOT_ROUTES.createComment.path),
    tag: 'comments',
    summary: 'Post a comment',
    description:
      'Emits `new_comment`, and `mention` to each `@username` named and to the album creator.',
    caller: 'user',
    params: { trackId: TRACK_ID },
    body: { schema: createCommentBody, kinds: ['json', 'form'], name: 'CreateComment' },
    answers: {
      201: {
        description: 'created',
        json: commentAnswerSchema,
        headers: { Location: 'the comment, /api/comments/{id}' },
      },
    },
    errors: [400, 401, 403, 404, 413, 415, 503],
  },
  {
    method: 'patch',
    path: api('/comments/:commentId'),
    tag: 'comments',
    summary: 'Edit a comment (its author only)',
    description: 'Emits `comment_edited`; users named for the first time get a `mention`.',
    caller: 'user',
    params: { commentId: COMMENT_ID },
    body: { schema: editCommentBody, kinds: ['json', 'form'], name: 'EditComment' },
    answers: { 200: { description: 'edited', json: commentAnswerSchema } },
    errors: [400, 401, 403, 404, 413, 415, 503],
  },
  {
    method: 'delete',
    path: api('/comments/:commentId'),
    tag: 'comments',
    summary: 'Delete a comment and its replies',
    description:
      'By its author, the album creator or a team member. Emits `comment_deleted` for each.',
    caller: 'user',
    params: { commentId: COMMENT_ID },
    answers: { 204: { description: 'deleted' } },
    errors: [401, 403, 404, 503],
  },
  {
    method: 'post',
    path: api('/tracks/:trackId/typing'),
    tag: 'streams',
    summary: 'Say that you are (not) typing',
    description: 'Emits `user_typing` on the track stream. Rate-limited per user and track.',
    caller: 'user',
    params: { trackId: TRACK_ID },
    body: { schema: typingBody, kinds: ['json', 'form'], name: 'Typing' },
    answers: { 202: { description: 'accepted', json: typingAnswerSchema } },
    errors: [400, 401, 404, 413, 415, 429, 503],
  },
  {
    method: 'get',
    path: api(HOT_ROUTES.trackEvents.path),
    tag: 'streams',
    summary: "A track's live events (SSE)",
    description: STREAM_DESCRIPTION,
    caller: 'user',
    params: { trackId: TRACK_ID },
    answers: { 200: STREAM_ANSWER },
    errors: [401, 404, 429, 503],
    stream: 'track',
  },
  {
    method: 'get',
    path: api(HOT_ROUTES.userEvents.path),
    tag: 'streams',
    summary: 'Your personal live events (SSE): mentions from every track',
    description: STREAM_DESCRIPTION,
    caller: 'user',
    answers: { 200: STREAM_ANSWER },
    errors: [401, 429, 503],
    stream: 'user',
  },
  {
    method: 'put',
    path: '/api/admin/users/:userId',
    tag: 'admin',
    summary: 'Create or update a user',
    caller: 'admin',
    params: { userId: 'user id (positive integer)' },
    body: { schema: adminUserBody, kinds: ['json'], name: 'AdminUser' },
    answers: {
      200: { description: 'updated', json: userAnswerSchema },
      201: { description: 'created', json: userAnswerSchema },
    },
    errors: [400, 401, 403, 409, 413, 415, 503],
  },
  {
    method: 'put',
    path: '/api/admin/albums/:albumId',
    tag: 'admin',
    summary: 'Create or update an album',
    caller: 'admin',
    params: { albumId: 'album id (positive integer)' },
    body: { schema: adminAlbumBody, kinds: ['json'], name: 'AdminAlbum' },
    answers: {
      200: { description: 'updated', json: albumAnswerSchema },
      201: { description: 'created', json: albumAnswerSchema },
    },
    errors: [400, 401, 403, 413, 415, 503],
  },
  {
    method: 'put',
    path: '/api/admin/tracks/:trackId',
    tag: 'admin',
    summary: 'Create or update a track',
    caller: 'admin',
    params: { trackId: TRACK_ID },
    body: { schema: adminTrackBody, kinds: ['json'], name: 'AdminTrack' },
    answers: {
      200: { description: 'updated', json: trackAnswerSchema },
      201: { description: 'created', json: trackAnswerSchema },
    },
    errors: [400, 401, 403, 413, 415, 503],
  },
  {
    method: 'get',
    path: '/healthz',
    tag: 'operations',
    summary: 'The process lives',
    caller: 'public',
    answers: { 200: { description: 'alive', json: healthSchema } },
    errors: [],
  },
  {
    method: 'get',
    path: '/readyz',
    tag: 'operations',
    summary: 'Ready: the database and the bus answer, and the process is not draining',
    caller: 'public',
    answers: {
      200: { description: 'ready', json: readinessSchema },
      503: { description: 'not ready (the same body: which check failed)', json: readinessSchema },
    },
    errors: [],
  },
  {
    method: 'get',
    path: '/metrics',
    tag: 'operations',
    summary: 'Prometheus metrics (for operators; nginx does not pass it on)',
    caller: 'public',
    answers: {
      200: {
        description: 'Prometheus text format',
        other: { mediaType: 'text/plain', description: 'Prometheus exposition format 0.0.4' },
      },
    },
    errors: [],
  },
  {
    method: 'get',
    path: '/openapi.json',
    tag: 'documentation',
    summary: 'This document (OpenAPI 3.1), generated from the validating schemas',
    caller: 'public',
    answers: {
      200: {
        description: 'the OpenAPI document',
        other: { mediaType: 'application/json', description: 'an OpenAPI 3.1 document' },
      },
    },
    errors: [],
  },
  {
    method: 'get',
    path: '/docs',
    tag: 'documentation',
    summary: 'This document rendered as a page (self-hosted, works offline)',
    caller: 'public',
    answers: {
      200: { description: 'the page', other: { mediaType: 'text/html', description: '' } },
    },
    errors: [],
  },
  {
    method: 'get',
    path: '/docs/docs-page.js',
    tag: 'documentation',
    summary: 'The script of the /docs page',
    caller: 'public',
    answers: {
      200: {
        description: 'an ES module',
        other: { mediaType: 'text/javascript', description: '' },
      },
    },
    errors: [],
  },
];
