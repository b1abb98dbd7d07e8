import type { NextFunction, Request, Response } from 'express';
import type { AdminAuthenticator, Session, UserAuthenticator } from '../auth/authenticate';
import type { User } from '../domain/types';

/**
 * Authenticates the caller as a user; the user is on `res.locals.user`, the token's expiry
 * (epoch ms) on `res.locals.tokenExpiresAt`.
 */
export function requireUser(auth: UserAuthenticator) {
  return async function requireUser(req: Request, res: Response, next: NextFunction) {
    const session = await auth.session(req.headers);
    res.locals.user = session.user;
    res.locals.tokenExpiresAt = session.expiresAt;
    next();
  };
}

export function requireAdmin(auth: AdminAuthenticator) {
  return (req: Request, _res: Response, next: NextFunction) => {
    auth.check(req.headers);
    next();
  };
}

export const currentUser = (res: Response): User => res.locals.user as User;

/** When the caller's token expires (epoch ms): a stream opened with it ends then. */
export const tokenExpiresAt = (res: Response): number => res.locals.tokenExpiresAt as number;

/** The caller's user and token expiry, as `requireUser` left them. */
export const currentSession = (res: Response): Session => ({
  user: currentUser(res),
  expiresAt: tokenExpiresAt(res),
});
