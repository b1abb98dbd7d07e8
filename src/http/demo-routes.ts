import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { TrackContext, User } from '../domain/types';
import { describeZodError, errorAnswer, sendError } from './errors';
import { exactRouter } from './exact-routing';

/**
 * Sign-in for the demo page at `/`: pick a demo user, get an `access_token` cookie.
 * Mounted at `/api/demo` only when the demo page is on, which is never in production
 * (anyone may become anyone here: it is a demo, not an identity provider).
 */

export interface DemoRouterDeps {
  issueToken(userId: number): Promise<string>;
  listUsers(): Promise<User[]>;
  listTracks(): Promise<TrackContext[]>;
  findUser(id: number): Promise<User | null>;
  secureCookies: boolean;
  /**
   * Authenticates a request (Bearer header or `access_token` cookie) for `GET /me`, which is
   * mounted outside the user-auth middleware; throws (e.g. an error with `status` 401) when
   * there is no valid user. Without it, `/me` only reads `res.locals.user`.
   */
  authenticate?(req: Request): Promise<User>;
  /** Cookie lifetime when the token carries no readable `exp`. */
  defaultTokenTtlSeconds?: number;
}

export const ACCESS_TOKEN_COOKIE = 'access_token';

const sessionBody = z
  .object({
    // Form posts send strings; JSON may send either.
    user_id: z.union([
      z.number().int().positive().max(2147483647, 'user_id is too large'),
      z
        .string()
        .regex(/^[1-9][0-9]{0,9}$/, 'user_id must be a positive integer')
        .transform(Number)
        .pipe(z.number().max(2147483647, 'user_id is too large')), // int4: the query's type
    ]),
  })
  .strict();

/** Seconds until the JWT's `exp`; the token is our own, so reading (not verifying) it is enough. */
export function secondsUntilExpiry(token: string, nowMs = Date.now()): number | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      exp?: unknown;
    };
    if (typeof claims.exp !== 'number') return null;
    return Math.max(0, Math.floor(claims.exp - nowMs / 1000));
  } catch {
    return null;
  }
}

/**
 * Browsers label every request with Sec-Fetch-Site; refusing cross-site ones stops another
 * site from signing a visitor in as a demo user of its choosing (login CSRF).
 */
function refuseCrossSite(req: Request, res: Response, next: NextFunction): void {
  if (req.get('sec-fetch-site') === 'cross-site') {
    sendError(res, 403, 'cross_site_request', 'cross-site requests are not allowed here');
    return;
  }
  next();
}

/**
 * Stands at `/api/demo` when the demo is off (always in production): every path there is 404
 * before any authentication, the same answer as a path that never existed.
 */
export function demoNotServed(): express.Router {
  const router = exactRouter();
  router.use((req, res) => {
    sendError(res, 404, 'not_found', `no route for ${req.method} ${req.baseUrl}${req.path}`);
  });
  return router;
}

export function createDemoRouter(deps: DemoRouterDeps): express.Router {
  const router = exactRouter();
  const cookieOptions = {
    httpOnly: true,
    sameSite: 'lax' as const,
    path: '/',
    secure: deps.secureCookies,
  };

  router.get('/users', async (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ users: await deps.listUsers() });
  });

  router.get('/tracks', async (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ tracks: await deps.listTracks() });
  });

  router.get('/me', async (req, res, next) => {
    let user = res.locals.user as User | undefined;
    if (!user && deps.authenticate) {
      try {
        user = await deps.authenticate(req);
      } catch (err) {
        // Not signed in (or not allowed) answers below; any other failure is the app's.
        const answer = errorAnswer(err);
        const status = answer !== null && answer !== 'aborted' ? answer.status : 0;
        if (status !== 401 && status !== 403) {
          next(err);
          return;
        }
      }
    }
    if (!user) {
      sendError(res, 401, 'unauthenticated', 'not signed in');
      return;
    }
    res.set('Cache-Control', 'no-store').json({
      user: {
        id: user.id,
        username: user.username,
        is_creator: user.is_creator,
        is_team: user.is_team,
      },
    });
  });

  const bodyLimit = '4kb';
  router.post(
    '/session',
    refuseCrossSite,
    express.json({ limit: bodyLimit }),
    express.urlencoded({ extended: false, limit: bodyLimit }),
    async (req, res) => {
      if (
        req.get('content-type') !== undefined &&
        !req.is(['application/json', 'application/x-www-form-urlencoded'])
      ) {
        sendError(
          res,
          415,
          'unsupported_media_type',
          'send application/json or application/x-www-form-urlencoded',
        );
        return;
      }
      const parsed = sessionBody.safeParse(req.body ?? {});
      if (!parsed.success) {
        sendError(res, 400, 'invalid_input', describeZodError(parsed.error));
        return;
      }
      const user = await deps.findUser(parsed.data.user_id);
      if (!user) {
        sendError(res, 404, 'user_not_found', 'no such user');
        return;
      }
      const token = await deps.issueToken(user.id);
      const ttl = secondsUntilExpiry(token) ?? deps.defaultTokenTtlSeconds ?? 3600;
      res
        .cookie(ACCESS_TOKEN_COOKIE, token, { ...cookieOptions, maxAge: ttl * 1000 })
        .set('Cache-Control', 'no-store')
        .json({ user });
    },
  );

  router.delete('/session', refuseCrossSite, (_req, res) => {
    res.clearCookie(ACCESS_TOKEN_COOKIE, cookieOptions).status(204).end();
  });

  // Body-parser failures on this router, in the contract's error shape.
  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const e = err as { status?: unknown; type?: unknown };
    if (res.headersSent || typeof e?.status !== 'number') {
      next(err);
      return;
    }
    if (e.status === 413) sendError(res, 413, 'payload_too_large', 'request body too large');
    else if (e.status === 415) sendError(res, 415, 'unsupported_media_type', 'unsupported charset');
    else if (e.status === 400)
      sendError(res, 400, 'invalid_json', 'request body is not valid JSON');
    else next(err);
  });

  return router;
}
