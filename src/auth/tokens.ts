import { SignJWT } from 'jose';

/** Signs a user JWT the way the main application does (HS256, sub = user id, exp). */
export async function signUserToken(
  secret: string,
  userId: number,
  ttlSeconds = 3600,
): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(String(userId))
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}
