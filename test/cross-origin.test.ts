/**
 * The cross-origin rule (contract section 7; Go's http.CrossOriginProtection), as a table:
 * method, Sec-Fetch-Site, Origin, Host and CORS_ORIGINS in, refused or not out.
 */
import { refusesCrossOrigin, trustedOriginSet } from '../src/http/cross-origin';

const HOST = 'svc.example:8080';
const TRUSTED = trustedOriginSet(['https://app.example', 'http://localhost:5173']);

interface Case {
  method?: string;
  site?: string;
  origin?: string;
  host?: string | null;
  refused: boolean;
}

const CASES: [string, Case][] = [
  // Safe methods are never checked.
  [
    'GET cross-site',
    { method: 'GET', site: 'cross-site', origin: 'https://evil.example', refused: false },
  ],
  [
    'HEAD cross-site',
    { method: 'HEAD', site: 'cross-site', origin: 'https://evil.example', refused: false },
  ],
  [
    'OPTIONS preflight',
    { method: 'OPTIONS', site: 'cross-site', origin: 'https://evil.example', refused: false },
  ],
  // Sec-Fetch-Site decides when present.
  ['POST same-origin', { site: 'same-origin', origin: `http://${HOST}`, refused: false }],
  ['POST none (typed URL)', { site: 'none', refused: false }],
  ['POST cross-site', { site: 'cross-site', origin: 'https://evil.example', refused: true }],
  [
    'POST same-site (a sibling subdomain)',
    { site: 'same-site', origin: 'https://a.svc.example', refused: true },
  ],
  ['POST cross-site without Origin', { site: 'cross-site', refused: true }],
  [
    'POST an unknown Sec-Fetch-Site value',
    { site: 'weird', origin: `http://${HOST}`, refused: true },
  ],
  [
    'Sec-Fetch-Site is case-sensitive',
    { site: 'Same-Origin', origin: 'https://evil.example', refused: true },
  ],
  [
    'POST cross-site from a trusted origin',
    { site: 'cross-site', origin: 'https://app.example', refused: false },
  ],
  [
    'POST same-site from a trusted origin',
    { site: 'same-site', origin: 'http://localhost:5173', refused: false },
  ],
  // Sec-Fetch-Site wins over a matching Origin (a proxy may rewrite Host).
  [
    'cross-site although Origin matches Host',
    { site: 'cross-site', origin: `http://${HOST}`, refused: true },
  ],
  [
    'trusted needs the exact origin (trailing slash)',
    { site: 'cross-site', origin: 'https://app.example/', refused: true },
  ],
  [
    'trusted needs the exact origin (scheme)',
    { site: 'cross-site', origin: 'http://app.example', refused: true },
  ],
  [
    'trusted needs the exact origin (port)',
    { site: 'cross-site', origin: 'http://localhost:5174', refused: true },
  ],
  // Without Sec-Fetch-Site: Origin against Host, then CORS_ORIGINS.
  ['no headers at all (curl, servers)', { refused: false }],
  ['Origin is the own host', { origin: `http://${HOST}`, refused: false }],
  [
    'Origin is the own host over https (the scheme is not compared)',
    { origin: `https://${HOST}`, refused: false },
  ],
  [
    'Origin is the own host name on another port',
    { origin: 'http://svc.example:9090', refused: true },
  ],
  ['Origin without the port the Host names', { origin: 'http://svc.example', refused: true }],
  [
    'Origin with a port the Host omits',
    { origin: 'http://svc.example:80', host: 'svc.example', refused: true },
  ],
  [
    'Origin with a default port the Host omits',
    { origin: 'http://svc.example', host: 'svc.example', refused: false },
  ],
  ['Origin another site', { origin: 'https://evil.example', refused: true }],
  ['Origin "null" (sandboxed frame, file:)', { origin: 'null', refused: true }],
  ['Origin "null" and no Host', { origin: 'null', host: null, refused: true }],
  ['Origin and no Host', { origin: `http://${HOST}`, host: null, refused: true }],
  ['Origin with a path is no origin', { origin: `http://${HOST}/x`, refused: true }],
  ['Origin with userinfo is no origin', { origin: `http://u@${HOST}`, refused: true }],
  [
    'two Origin headers joined by Node',
    { origin: `http://${HOST}, https://evil.example`, refused: true },
  ],
  ['Origin in CORS_ORIGINS', { origin: 'https://app.example', refused: false }],
  ['empty Origin is absent', { origin: '', refused: false }],
  ['empty Sec-Fetch-Site is absent', { site: '', origin: 'https://evil.example', refused: true }],
  // Every method but GET/HEAD/OPTIONS is checked.
  ['PUT cross-site', { method: 'PUT', site: 'cross-site', refused: true }],
  ['PATCH from another origin', { method: 'PATCH', origin: 'https://evil.example', refused: true }],
  [
    'DELETE from another origin',
    { method: 'DELETE', origin: 'https://evil.example', refused: true },
  ],
  ['an unknown method cross-site', { method: 'PROPFIND', site: 'cross-site', refused: true }],
];

test.each(CASES)('%s', (_name, c) => {
  const headers: Record<string, string> = {};
  if (c.host !== null) headers.host = c.host ?? HOST;
  if (c.site !== undefined) headers['sec-fetch-site'] = c.site;
  if (c.origin !== undefined) headers.origin = c.origin;
  expect(refusesCrossOrigin({ method: c.method ?? 'POST', headers }, TRUSTED)).toBe(c.refused);
});

test('CORS_ORIGINS entries that are no origin are never trusted ("null", a path, a bare host)', () => {
  const trusted = trustedOriginSet(['null', 'https://app.example/path', 'app.example', '*']);
  expect([...trusted]).toEqual([]);
  for (const origin of ['null', 'https://app.example/path', 'app.example', '*']) {
    const req = { method: 'POST', headers: { host: HOST, 'sec-fetch-site': 'cross-site', origin } };
    expect(refusesCrossOrigin(req, trusted)).toBe(true);
  }
});

test('with no CORS_ORIGINS only the own host passes', () => {
  const none = trustedOriginSet([]);
  const post = (origin: string) =>
    refusesCrossOrigin({ method: 'POST', headers: { host: HOST, origin } }, none);
  expect(post(`http://${HOST}`)).toBe(false);
  expect(post('https://app.example')).toBe(true);
});
