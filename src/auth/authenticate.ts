import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { jwtVerify, errors as joseErrors } from 'jose';
import type { User } from '../domain/types';

/**
 * An identity failure, by code: `unauthenticated` (no valid credentials) or `forbidden`
 * (valid, but not these). src/http/errors.ts maps the codes to statuses.
 */
export class AuthError extends Error {
  constructor(
    readonly code: 'unauthenticated' | 'forbidden',
    message: string,
  ) {
    super(message);
  }
}

/** The token of an `Authorization: Bearer <token>` header; null for any other form. */
export function bearerToken(authorization: string): string | null {
  return /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(authorization)?.[1] ?? null;
}

/** Reads one cookie from a Cookie header without a parser dependency. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(value);
      } catch {
        return value;
      }
    }
  }
  return undefined;
}

/** Bearer header first, then the `access_token` cookie. Never the query string (RFC 9700). */
export function tokenFrom(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (auth !== undefined) {
    const token = bearerToken(auth);
    if (token === null)
      throw new AuthError('unauthenticated', 'Authorization must be "Bearer <token>"');
    return token;
  }
  return readCookie(headers.cookie, 'access_token');
}

const SUB = /^[1-9][0-9]{0,9}$/;

/** A token that passed verification: whom it names and until when it is valid. */
interface VerifiedToken {
  id: number;
  /** The token's `exp`, in epoch milliseconds. */
  expMs: number;
  /** Until when this verification is reused without a new HMAC. */
  until: number;
}

/** The user a request is made as, and when the token it came with expires. */
export interface Session {
  user: User;
  /** The token's `exp`, in epoch milliseconds: a stream opened with it ends then. */
  expiresAt: number;
}

/**
 * Verifies user JWTs (HS256, exp required, sub = decimal user id) and loads
 * the user. Found users are cached briefly so hot paths (typing, posting)
 * don't pay a query per request; role changes show within `cacheMs`.
 */
export class UserAuthenticator {
  /** Imported once: jose would otherwise import a raw secret into WebCrypto on every verify. */
  private readonly key: Promise<CryptoKey>;
  private readonly cache = new Map<number, { user: User; until: number }>();
  /**
   * Tokens already verified, with their subject and expiry: a stream reconnect or a burst
   * of writes with the same token skips the HMAC. Bounded; entries live at most a minute
   * and never past the token's own `exp`.
   */
  private readonly verified = new Map<string, VerifiedToken>();

  constructor(
    secret: string,
    private readonly findUser: (id: number) => Promise<User | null>,
    private readonly cacheMs = 2000,
  ) {
    this.key = crypto.subtle.importKey(
      'raw',
      new TextEncoder().encode(secret),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['verify'],
    );
  }

  async authenticate(headers: IncomingHttpHeaders): Promise<User> {
    return this.userOf((await this.verifiedToken(headers)).id);
  }

  /** As `authenticate`, with the token's expiry (for streams, which must end with it). */
  async session(headers: IncomingHttpHeaders): Promise<Session> {
    const token = await this.verifiedToken(headers);
    return { user: await this.userOf(token.id), expiresAt: token.expMs };
  }

  private verifiedToken(headers: IncomingHttpHeaders): Promise<VerifiedToken> {
    const token = tokenFrom(headers);
    if (!token)
      throw new AuthError('unauthenticated', 'a bearer token or access_token cookie is required');
    return this.verify(token);
  }

  private async userOf(id: number): Promise<User> {
    const hit = this.cache.get(id);
    if (hit && hit.until > Date.now()) return hit.user;
    const user = await this.findUser(id);
    if (!user) throw new AuthError('unauthenticated', 'unknown user');
    if (this.cache.size > 10000) this.cache.clear();
    this.cache.set(id, { user, until: Date.now() + this.cacheMs });
    return user;
  }

  /** Verifies a token (HS256, `exp` and a decimal `sub` required). */
  private async verify(token: string): Promise<VerifiedToken> {
    const now = Date.now();
    const seen = this.verified.get(token);
    if (seen && seen.until > now) {
      if (seen.expMs <= now) throw new AuthError('unauthenticated', 'token expired');
      return seen;
    }
    let sub: string | undefined;
    let exp: number | undefined;
    try {
      const { payload } = await jwtVerify(token, await this.key, {
        algorithms: ['HS256'],
        requiredClaims: ['exp', 'sub'],
      });
      // jose leaves the claim's type alone; RFC 7519 (and the contract) make `sub` a string.
      sub = typeof payload.sub === 'string' ? payload.sub : undefined;
      exp = payload.exp;
    } catch (err) {
      const expired = err instanceof joseErrors.JWTExpired;
      throw new AuthError('unauthenticated', expired ? 'token expired' : 'invalid token');
    }
    if (!sub || !SUB.test(sub) || Number(sub) > 2147483647) {
      throw new AuthError('unauthenticated', 'token subject is not a user id');
    }
    const verified = { id: Number(sub), expMs: (exp ?? 0) * 1000, until: now + 60_000 };
    if (this.verified.size >= 20000) this.verified.clear();
    this.verified.set(token, verified);
    return verified;
  }

  /** Drops a cached user after the catalogue changed it on this replica. */
  forget(id: number): void {
    this.cache.delete(id);
  }
}

/** The main application's static service token, compared in constant time. */
export class AdminAuthenticator {
  private readonly digest: Buffer;

  constructor(adminToken: string) {
    this.digest = createHash('sha256').update(adminToken).digest();
  }

  check(headers: IncomingHttpHeaders): void {
    const auth = headers.authorization;
    const token = auth === undefined ? null : bearerToken(auth);
    if (token === null)
      throw new AuthError(
        'unauthenticated',
        'the admin API needs Authorization: Bearer <ADMIN_TOKEN>',
      );
    const given = createHash('sha256').update(token).digest();
    if (!timingSafeEqual(given, this.digest)) {
      throw new AuthError('forbidden', 'not the admin token');
    }
  }
}
