/**
 * Generators of hostile and careless requests for the property-based fuzz suite
 * (test/fuzz.test.ts): every endpoint of the contract, reached by both request paths (the
 * lean entry takes the exact path with a plain JSON body; a query string or a form body goes
 * to express), with generated ids, query strings, headers and bodies.
 */
import fc from 'fast-check';
import type { RawRequest } from './raw-http';

/** What the world under test looks like: names the generators mix with garbage. */
export interface FuzzWorld {
  trackIds: string[];
  commentIds: () => number[];
  userIds: number[];
  usernames: string[];
  /** Header values for Authorization: valid users, admin, expired, unknown user. */
  authValues: string[];
  adminToken: string;
  /** The service's own origin (`http://127.0.0.1:<port>`). */
  ownOrigin: string;
}

const BYTE_TEXT = fc.uint8Array({ maxLength: 20 });

/** Arbitrary bytes, percent-encoded: invalid UTF-8, NUL, slashes and dots included. */
const pctBytes = BYTE_TEXT.map((bytes) =>
  Array.from(bytes, (b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join(''),
);

/** Percent-encodes a string's UTF-16 units as UTF-8 would, lone surrogates as CESU bytes. */
function pctUtf16(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (/[A-Za-z0-9_.~-]/.test(ch)) out += ch;
    else if (cp >= 0xd800 && cp <= 0xdfff)
      out += `%${(0xe0 | (cp >> 12)).toString(16)}%${(0x80 | ((cp >> 6) & 63)).toString(16)}%${(0x80 | (cp & 63)).toString(16)}`;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

const SPECIAL_STRINGS = [
  '',
  ' ',
  '   \t\n',
  'x \ud800',
  '\udfff',
  '\ud83d',
  'a\u0000b',
  '\u0000',
  '\u202e\ufeff',
  'a'.repeat(2001),
  ' '.repeat(5) + 'b'.repeat(2000) + ' '.repeat(5),
  '%00',
  '../../etc/passwd',
  '<script>alert(1)</script>',
  "'; DROP TABLE comments; --",
  '{"$gt":""}',
];

/** Characters that trip text handling: lone surrogates, NUL, controls, bidi, BOM, '@'. */
const trickyChar = fc.oneof(
  fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\u0000', '\u0001', '\u202e', '\ufeff'),
  fc.constantFrom('@', ' ', '\n', '\\', '"', "'", '%', '\u00e9', '\u{1f3b5}'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);

/** Text as a careless or hostile client writes it. */
const weirdString = (world: FuzzWorld): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: trickyChar, maxLength: 30 }) },
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    { weight: 2, arbitrary: fc.constantFrom(...SPECIAL_STRINGS) },
    fc
      .array(fc.constantFrom(...world.usernames, 'nobody', 'b0b', 'e@mail.com'), { maxLength: 25 })
      .map((names) => names.map((n) => `@${n}`).join(' ')),
  );

const weirdNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -1, 1e308, -1e-300, 2 ** 31, 2 ** 53 + 1, '12', '', null, true, [], {}),
);

/** A JSON body of the fields any endpoint reads, plus strangers, with weird values. */
const jsonBody = (world: FuzzWorld): fc.Arbitrary<Record<string, unknown>> =>
  fc.record(
    {
      content: fc.oneof(weirdString(world), weirdNumber),
      timestamp: weirdNumber,
      parent_id: fc.oneof(weirdNumber, fc.constantFrom(...world.commentIds(), 0)),
      is_typing: fc.oneof(fc.boolean(), weirdNumber, weirdString(world)),
      username: fc.oneof(weirdString(world), fc.stringMatching(/^[A-Za-z0-9_]{1,32}$/)),
      title: weirdString(world),
      is_creator: fc.oneof(fc.boolean(), weirdNumber),
      is_team: fc.oneof(fc.boolean(), weirdNumber),
      album_id: weirdNumber,
      created_by_id: fc.oneof(weirdNumber, fc.constantFrom(...world.userIds)),
      duration_s: weirdNumber,
      user_id: fc.constantFrom(...world.userIds),
      constructor: fc.constant('x'),
    },
    { requiredKeys: [] },
  );

type Kind = 'create' | 'edit' | 'typing' | 'user' | 'album' | 'track' | 'other';

/** The fields each write reads, with weird values: what gets past the unknown-field check. */
const fieldsOf = (world: FuzzWorld, kind: Kind): fc.Arbitrary<Record<string, unknown>> => {
  // Mostly values of the right type, so that the odd ones reach validation's depths and the store.
  const text = fc.oneof({ weight: 5, arbitrary: weirdString(world) }, weirdNumber);
  const smallNumber = fc.oneof(
    { weight: 5, arbitrary: fc.double({ min: 0, max: 50, noNaN: true }) },
    weirdNumber,
  );
  switch (kind) {
    case 'create':
      return fc.record(
        {
          content: text,
          timestamp: smallNumber,
          parent_id: fc.oneof(fc.constantFrom(...world.commentIds()), weirdNumber),
        },
        { requiredKeys: ['content'] },
      );
    case 'edit':
      return fc.record({ content: text });
    case 'typing':
      return fc.record({ is_typing: fc.oneof(fc.boolean(), weirdNumber) });
    case 'user':
      return fc.record({
        username: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_]{1,32}$/), weirdString(world)),
        is_creator: fc.oneof(fc.boolean(), weirdNumber),
        is_team: fc.oneof(fc.boolean(), weirdNumber),
      });
    case 'album':
      return fc.record({
        title: text,
        created_by_id: fc.oneof(fc.constantFrom(...world.userIds), weirdNumber),
      });
    case 'track':
      return fc.record(
        { title: text, album_id: fc.oneof(fc.constant(1), weirdNumber), duration_s: smallNumber },
        { requiredKeys: ['title', 'album_id'] },
      );
    default:
      return jsonBody(world);
  }
};

const plausibleBody = (world: FuzzWorld, kind: Kind) =>
  fc.record({
    type: fc.constantFrom('application/json', 'application/json; charset=utf-8'),
    bytes: fieldsOf(world, kind).map((b) => Buffer.from(JSON.stringify(b), 'utf8')),
  });

const RAW_JSON_TEXTS = [
  '',
  '{',
  'null',
  '"x"',
  '[]',
  '{"content":"x","timestamp":1e400}',
  '{"content":"x","parent_id":1e400}',
  '{"content":"x","parent_id":99999999999999999999}',
  '{"content":"x\\u0000"}',
  '{"content":"x\\ud800"}',
  '{"content":"x","content":"y"}',
  '{"content":"x","__proto__":{"is_team":true}}',
  '\ufeff{"content":"bom"}',
  '['.repeat(3000) + ']'.repeat(3000),
  '{"a":'.repeat(2000) + '1' + '}'.repeat(2000),
];

const body = (world: FuzzWorld): fc.Arbitrary<{ type: string | null; bytes: Buffer }> =>
  fc.oneof(
    fc.record({
      type: fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'application/json; charset=latin1',
        'application/merge-patch+json',
        'text/plain',
        null,
      ),
      bytes: jsonBody(world).map((b) => Buffer.from(JSON.stringify(b), 'utf8')),
    }),
    fc.record({
      type: fc.constantFrom('application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'),
      bytes: jsonBody(world).map((b) =>
        Buffer.from(
          Object.entries(b)
            .map(([k, v]) => `${pctUtf16(k)}=${pctUtf16(String(v))}`)
            .join('&'),
          'latin1',
        ),
      ),
    }),
    fc.record({
      type: fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'x/y'),
      bytes: fc.oneof(
        fc.constantFrom(...RAW_JSON_TEXTS).map((t) => Buffer.from(t, 'utf8')),
        fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
        fc.constant(Buffer.alloc(17 * 1024, 'a')),
      ),
    }),
  );

const trackSegment = (world: FuzzWorld) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...world.trackIds) },
    { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9._~:-]{1,130}$/) },
    { weight: 2, arbitrary: pctBytes },
    fc.constantFrom('.', '..', '%2e%2e', 'a%2Fb', '%00', '%ED%A0%80', 'x'.repeat(200), '%zz'),
  );

const numericSegment = (known: () => number[]) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known(), 1).map(String) },
    fc.integer({ min: -10, max: 2 ** 40 }).map(String),
    fc.constantFrom('0', '-1', '1e3', '0x10', '1.5', '99999999999999999999', ' 1', '+1', 'abc'),
    pctBytes,
  );

const queryString = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom('limit', 'cursor', 'order', 'last_event_id', 'user_id', 'access_token'),
        pctBytes,
      ),
      fc.oneof(
        fc.constantFrom('0', '1', '200', '201', '-5', '1e9', 'timestamp', 'created', 'abc', ''),
        fc.integer().map(String),
        pctBytes,
        fc.base64String({ maxLength: 40 }).map(encodeURIComponent),
      ),
    ),
    { maxLength: 4 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&'));

/** One endpoint of the contract with generated parts, or an odd spelling of one. */
const target = (world: FuzzWorld): fc.Arbitrary<{ method: string; path: string; kind: Kind }> => {
  const t = trackSegment(world);
  const c = numericSegment(world.commentIds);
  const u = numericSegment(() => world.userIds);
  const at =
    <K extends Kind>(method: string, kind: K, path: (id: string) => string) =>
    (ids: fc.Arbitrary<string>) =>
      ids.map((id) => ({ method, path: path(id), kind }));
  return fc.oneof(
    { weight: 5, arbitrary: at('POST', 'create', (id) => `/api/tracks/${id}/comments`)(t) },
    at('GET', 'other', (id) => `/api/tracks/${id}/comments`)(t),
    { weight: 2, arbitrary: at('PATCH', 'edit', (id) => `/api/comments/${id}`)(c) },
    at('DELETE', 'other', (id) => `/api/comments/${id}`)(c),
    at('POST', 'typing', (id) => `/api/tracks/${id}/typing`)(t),
    { weight: 2, arbitrary: at('GET', 'other', (id) => `/api/tracks/${id}/events`)(t) },
    fc.constant({ method: 'GET', path: '/api/me/events', kind: 'other' as const }),
    at('PUT', 'user', (id) => `/api/admin/users/${id}`)(u),
    at('PUT', 'album', (id) => `/api/admin/albums/${id}`)(u),
    at('PUT', 'track', (id) => `/api/admin/tracks/${id}`)(t),
    fc.constantFrom(
      ...['/healthz', '/readyz', '/metrics', '/METRICS', '/api/me/events/', '/API/me/events'].map(
        (path) => ({ method: 'GET', path, kind: 'other' as const }),
      ),
    ),
    fc.record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE'),
      path: fc.constantFrom(
        '/api/Tracks/x/comments',
        '/api/tracks/x/comments/',
        '/api/tracks//comments',
        '/api/comments/',
        '/api//comments/1',
        '/api/admin/users/',
        '/%2e%2e/api/me/events',
        '/api/demo/login',
        '/api/demo/users',
        '/',
        '//',
      ),
      kind: fc.constant('other' as const),
    }),
  );
};

/** Headers of a well-behaved client: a user's token, same-origin if anything, maybe a resume. */
const plausibleHeaders = (world: FuzzWorld, kind: Kind): fc.Arbitrary<[string, string][]> =>
  fc
    .record(
      {
        auth: fc.constantFrom(
          ...(['user', 'album', 'track'].includes(kind)
            ? world.authValues.filter((v) => v.includes(world.adminToken))
            : world.authValues.slice(0, world.userIds.length)),
        ),
        lastEventId: fc.option(fc.oneof(fc.nat().map(String), fc.constantFrom('0', '1e3', '-1')), {
          nil: undefined,
        }),
        origin: fc.option(fc.constant(world.ownOrigin), { nil: undefined }),
      },
      { requiredKeys: ['auth'] },
    )
    .map((h) => {
      const out: [string, string][] = [['Authorization', h.auth]];
      if (h.lastEventId !== undefined) out.push(['Last-Event-ID', h.lastEventId]);
      if (h.origin !== undefined) out.push(['Origin', h.origin], ['Sec-Fetch-Site', 'same-origin']);
      return out;
    });

const hostileHeaders = (world: FuzzWorld): fc.Arbitrary<[string, string][]> => {
  const printable = fc.string({
    unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)),
    maxLength: 30,
  });
  return fc
    .record(
      {
        authorization: fc.oneof(
          { weight: 6, arbitrary: fc.constantFrom(...world.authValues) },
          fc.constantFrom('Bearer', 'Bearer ', 'Basic YTpi', 'bearer x.y.z', 'Bearer a.b'),
          printable,
        ),
        cookie: fc.oneof(
          fc
            .constantFrom(...world.authValues)
            .map((v) => `access_token=${v.replace(/^Bearer /, '')}`),
          printable.map((v) => `access_token=${v}`),
        ),
        lastEventId: fc.oneof(
          fc.constantFrom('0', '1', '-1', '1e3', '9007199254740993', '99999999999999999999999', ''),
          fc.bigInt({ min: -10n, max: 10n ** 20n }).map(String),
          printable,
        ),
        origin: fc.constantFrom(
          world.ownOrigin,
          'https://evil.example',
          'null',
          'http://127.0.0.1',
        ),
        secFetchSite: fc.constantFrom('same-origin', 'none', 'cross-site', 'same-site', 'bogus'),
        accept: fc.constantFrom('text/event-stream', 'application/json', '*/*'),
      },
      { requiredKeys: [] },
    )
    .map((h) => {
      const out: [string, string][] = [];
      if (h.authorization !== undefined) out.push(['Authorization', h.authorization]);
      if (h.cookie !== undefined) out.push(['Cookie', h.cookie]);
      if (h.lastEventId !== undefined) out.push(['Last-Event-ID', h.lastEventId]);
      if (h.origin !== undefined) out.push(['Origin', h.origin]);
      if (h.secFetchSite !== undefined) out.push(['Sec-Fetch-Site', h.secFetchSite]);
      if (h.accept !== undefined) out.push(['Accept', h.accept]);
      return out;
    });
};

/**
 * A whole request: an endpoint, maybe a query string (which sends writes to express), headers
 * and a body. Half are well-behaved clients with odd data (so the data reaches validation and
 * the database), half are hostile in every part.
 */
export function fuzzRequest(world: FuzzWorld): fc.Arbitrary<RawRequest> {
  return target(world).chain((t) =>
    fc
      .record({
        query: fc.option(queryString, { nil: undefined }),
        parts: fc.oneof(
          fc.record({
            headers: plausibleHeaders(world, t.kind),
            body: plausibleBody(world, t.kind),
          }),
          fc.record({
            headers: hostileHeaders(world),
            body: fc.option(body(world), { nil: undefined }),
          }),
        ),
      })
      .map(({ query, parts: { headers: hs, body: b } }) => {
        const list = [...hs];
        if (b?.type) list.push(['Content-Type', b.type]);
        return {
          method: t.method,
          target: query === undefined ? t.path : `${t.path}?${query}`,
          headers: list,
          body: b && t.method !== 'GET' && t.method !== 'HEAD' ? b.bytes : Buffer.alloc(0),
        };
      }),
  );
}
