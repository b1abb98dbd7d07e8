import { Router, type Express } from 'express';

/**
 * Routes match exactly (contract section 7): case-sensitively, and a trailing slash makes
 * another path. Other spellings (`/API/...`, `.../events/`) are 404, so no limit keyed on a
 * path (nginx's locations, the lean paths) can be passed by spelling a route differently.
 */
const EXACT = { caseSensitive: true, strict: true } as const;

/** A Router that matches exactly; express 5 routers do not inherit the app's settings. */
export function exactRouter(): Router {
  return Router(EXACT);
}

/** Sets exact matching on the app's own router; call before the first `app.use`. */
export function routeExactly(app: Express): void {
  app.set('case sensitive routing', EXACT.caseSensitive);
  app.set('strict routing', EXACT.strict);
}
