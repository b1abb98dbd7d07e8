import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHandler } from 'express';
import { HttpError } from './errors';

/** Methods that change nothing: never checked. Every other method is (Go checks the same set). */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** An Origin header as browsers serialize it: `scheme://host[:port]`, nothing after. */
const SERIALIZED_ORIGIN = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#@\s]+)$/;

/** The `host[:port]` of a serialized origin; null for anything else (e.g. the opaque `null`). */
function hostOf(origin: string): string | null {
  return SERIALIZED_ORIGIN.exec(origin)?.[1] ?? null;
}

/** Origins (`CORS_ORIGINS`) whose writes are let through; entries that are no origin are dropped. */
export function trustedOriginSet(origins: readonly string[]): ReadonlySet<string> {
  return new Set(origins.filter((o) => hostOf(o) !== null));
}

/** A header's value as Go's `Header.Get` sees it: absent and empty are the same. */
function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Whether a request is a cross-site write to refuse (contract section 7), by the algorithm of
 * Go's `http.CrossOriginProtection`:
 * - `GET`, `HEAD`, `OPTIONS` pass;
 * - `Sec-Fetch-Site: same-origin` or `none` (typed URL, bookmark) passes; any other value
 *   (`cross-site`, `same-site`) is refused unless `Origin` is trusted;
 * - without `Sec-Fetch-Site` (older browsers), an `Origin` whose host is the request's own
 *   `Host` passes, a trusted one passes, any other is refused (`null` included);
 * - neither header (curl, servers, same-origin requests of old browsers) passes.
 * The scheme is not compared with `Host` (it carries none), as in Go: every browser that may
 * omit `Sec-Fetch-Site` is old enough to be a trade-off already; HSTS covers http→https.
 * A repeated header reaches Node joined by commas and is then neither value: refused.
 */
export function refusesCrossOrigin(
  req: { method?: string; headers: IncomingHttpHeaders },
  trusted: ReadonlySet<string>,
): boolean {
  if (SAFE_METHODS.has(req.method ?? 'GET')) return false;
  const origin = header(req.headers, 'origin');
  const site = header(req.headers, 'sec-fetch-site');
  if (site !== undefined) {
    if (site === 'same-origin' || site === 'none') return false;
    return origin === undefined || !trusted.has(origin);
  }
  if (origin === undefined) return false;
  const host = header(req.headers, 'host');
  if (host !== undefined && hostOf(origin) === host) return false;
  return !trusted.has(origin);
}

const crossOriginRefused = (): HttpError =>
  new HttpError(
    403,
    'cross_origin_request',
    'cross-origin writes are refused: the request came from another site',
  );

/** The rule for the express app; the lean comment path calls `refusesCrossOrigin` itself. */
export function crossOriginProtection(trustedOrigins: readonly string[]): RequestHandler {
  const trusted = trustedOriginSet(trustedOrigins);
  return function crossOriginProtection(req, _res, next) {
    next(refusesCrossOrigin(req, trusted) ? crossOriginRefused() : undefined);
  };
}
