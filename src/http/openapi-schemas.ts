import { z } from 'zod';
import { commentSchema, userRefSchema } from '../events/catalogue';
import type { ErrorBody } from '../events/error-body';
import type { Album, Track, User } from '../domain/types';

/**
 * Zod schemas of the JSON answers that are not SSE payloads, for the OpenAPI document. The
 * domain declares these shapes as interfaces; the checks at the bottom fail to compile when
 * a schema and its interface disagree, so the document cannot drift from what is sent.
 */

export const userSchema = userRefSchema
  .extend({ is_creator: z.boolean(), is_team: z.boolean() })
  .meta({ id: 'User' });

export const albumSchema = z
  .object({ id: z.number().int(), title: z.string(), created_by_id: z.number().int() })
  .meta({ id: 'Album' });

export const trackSchema = z
  .object({
    id: z.string(),
    title: z.string(),
    album_id: z.number().int(),
    duration_s: z.number().nullable(),
  })
  .meta({ id: 'Track' });

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'snake_case, stable; e.g. `not_found`' }),
      message: z.string().meta({ description: 'human text' }),
    }),
  })
  .meta({ id: 'Error', description: 'The body of every refusal (contract section 4).' });

export const commentPageSchema = z
  .object({ comments: z.array(commentSchema), next_cursor: z.string().nullable() })
  .meta({ id: 'CommentPage' });

export const commentAnswerSchema = z
  .object({ comment: commentSchema })
  .meta({ id: 'CommentAnswer' });

export const typingAnswerSchema = z
  .object({ accepted: z.literal(true) })
  .meta({ id: 'TypingAccepted' });

export const healthSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

export const readinessSchema = z
  .object({
    status: z.enum(['ready', 'not_ready']),
    checks: z.record(z.string(), z.boolean()).meta({ description: 'each dependency: answers?' }),
  })
  .meta({ id: 'Readiness' });

export const userAnswerSchema = z.object({ user: userSchema }).meta({ id: 'UserAnswer' });
export const albumAnswerSchema = z.object({ album: albumSchema }).meta({ id: 'AlbumAnswer' });
export const trackAnswerSchema = z.object({ track: trackSchema }).meta({ id: 'TrackAnswer' });

// ---- compile-time agreement with the domain's interfaces ---------------------------------------

type Same<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

const _userAgrees: Same<z.infer<typeof userSchema>, User> = true;
const _albumAgrees: Same<z.infer<typeof albumSchema>, Album> = true;
const _trackAgrees: Same<z.infer<typeof trackSchema>, Track> = true;
const _errorAgrees: Same<z.infer<typeof errorBodySchema>, ErrorBody> = true;
