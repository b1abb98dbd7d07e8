import type { NextFunction, Request, Response } from 'express';
import type { AdminAuthenticator, UserAuthenticator } from '../auth/authenticate';
import type { User } from '../domain/types';

/** Authenticates the caller as a user; the user is on `res.locals.user`. */
export function requireUser(auth: UserAuthenticator) {
  return async (req: Request, res: Response, next: NextFunction) => {
    res.locals.user = await auth.authenticate(req.headers);
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
