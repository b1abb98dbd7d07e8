/**
 * Secrets stay secret (contract section 7) and where the embedded default listens (section 6),
 * on the real server process with the embedded database:
 * - NODE_ENV=production seeds no demo users, serves no demo sign-in or page, and prints no
 *   secret and no token, in the banner or in the request logs of either request path;
 * - outside production, a secret the operator set is never printed (nor tokens signed with it,
 *   nor is it copied into DATA_DIR), while generated ones still are, so the demo stays usable;
 * - the embedded default binds 127.0.0.1 unless HOST says otherwise, and the banner says where.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { signUserToken } from '../src/auth/tokens';
import { ConfigError, loadConfig } from '../src/config/config';
import { describeListenAddress } from '../src/lifecycle/banner';
import { startReplica, type Replica } from '../harness/replica';
import { waitFor } from '../harness/wait';

// PGlite's first start in a fresh DATA_DIR runs initdb (several seconds on a busy machine).
jest.setTimeout(180_000);

const OPERATOR_SECRET = 'operator-auth-secret-7f3a9c1e5b2d4f60';
const OPERATOR_ADMIN = 'operator-admin-token-2b8e6d4a0c9f1e37';
/** Any JWT (header.payload.signature, base64url, header starting `{"`). */
const JWT = /eyJ[\w-]+\.[\w-]+\.[\w-]+/;

const dataDirs: string[] = [];
const replicas: Replica[] = [];

async function startEmbedded(env: Record<string, string | undefined>): Promise<Replica> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tc-production-mode-'));
  dataDirs.push(dataDir);
  const replica = await startReplica({
    env: { DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
    timeoutMs: 90_000,
  });
  replicas.push(replica);
  return replica;
}

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** The addresses a TCP socket listens on at `port`, from the kernel's socket tables (Linux). */
function listeningAddresses(port: number): string[] {
  const found: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (!local || state !== '0A') continue; // 0A = LISTEN
      const [hex, portHex] = local.split(':') as [string, string];
      if (parseInt(portHex, 16) !== port) continue;
      if (hex.length === 8) {
        // IPv4 in host (little-endian) byte order.
        found.push([6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.'));
      } else {
        found.push(/^0+$/.test(hex) ? '::' : `ipv6:${hex}`);
      }
    }
  }
  return found.sort();
}

/** An IPv4 address of this machine other than loopback, if it has one. */
function nonLoopbackAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

/** Resolves with the connect error code, or 'connected'. */
function tryConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('configuration', () => {
  test('HOST: 127.0.0.1 in the embedded default outside production, else 0.0.0.0; HOST wins', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ NODE_ENV: 'test' }).host).toBe('127.0.0.1');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(loadConfig({ DATABASE_URL: 'postgres://db/tc' }).host).toBe('0.0.0.0');
    expect(loadConfig({ REDIS_URL: 'redis://cache:6379' }).host).toBe('0.0.0.0');
    const production = { NODE_ENV: 'production', AUTH_SECRET: OPERATOR_SECRET };
    expect(loadConfig({ ...production, ADMIN_TOKEN: OPERATOR_ADMIN }).host).toBe('0.0.0.0');
  });

  test('production has no demo page, even embedded; DEMO_PAGE=true there is refused', () => {
    const production = {
      NODE_ENV: 'production',
      AUTH_SECRET: OPERATOR_SECRET,
      ADMIN_TOKEN: OPERATOR_ADMIN,
    };
    expect(loadConfig(production).demoPage).toBe(false);
    expect(loadConfig({ ...production, DEMO_PAGE: 'false' }).demoPage).toBe(false);
    let caught: unknown;
    try {
      loadConfig({ ...production, DEMO_PAGE: 'true' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as Error).message).toMatch(/DEMO_PAGE/);
    expect((caught as Error).message).not.toContain(OPERATOR_SECRET);
  });

  test('the banner address is the bound one; a wildcard is said to be reachable', () => {
    const at = (address: string) => describeListenAddress({ address, family: '', port: 3000 });
    expect(at('127.0.0.1')).toEqual({ base: 'http://127.0.0.1:3000', reach: '127.0.0.1 only' });
    expect(at('::1')).toEqual({ base: 'http://[::1]:3000', reach: '[::1] only' });
    expect(at('0.0.0.0').base).toBe('http://127.0.0.1:3000');
    expect(at('0.0.0.0').reach).toMatch(/all interfaces .*other machines/);
    expect(at('::').reach).toMatch(/all interfaces/);
  });
});

describe('NODE_ENV=production on the embedded database (no DATABASE_URL)', () => {
  let replica: Replica;
  const token = (userId: number) => signUserToken(OPERATOR_SECRET, userId, 600);

  beforeAll(async () => {
    replica = await startEmbedded({
      NODE_ENV: 'production',
      AUTH_SECRET: OPERATOR_SECRET,
      ADMIN_TOKEN: OPERATOR_ADMIN,
    });
  });

  test('seeds no demo users: a token signed for user 1 is 401', async () => {
    const headers = { Authorization: `Bearer ${await token(1)}` };
    const list = await fetch(`${replica.url}/api/tracks/night-drive-01/comments`, { headers });
    expect(list.status).toBe(401);
    const post = await fetch(`${replica.url}/api/tracks/night-drive-01/comments`, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ content: 'hello' }),
    });
    expect(post.status).toBe(401);
    // Nor is there a demo catalogue: the admin API sees no user 3 (the demo team member)...
    const team = await fetch(`${replica.url}/api/tracks/night-drive-01/comments`, {
      headers: { Authorization: `Bearer ${await token(3)}` },
    });
    expect(team.status).toBe(401);
  });

  test('serves no demo sign-in and no demo page: /api/demo/* and / are 404', async () => {
    const answers: Record<string, number> = {};
    for (const p of ['/api/demo/users', '/api/demo/tracks', '/api/demo/me', '/', '/index.html']) {
      answers[`GET ${p}`] = (await fetch(`${replica.url}${p}`)).status;
    }
    const signIn = await fetch(`${replica.url}/api/demo/session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user_id: 3 }),
    });
    answers['POST /api/demo/session'] = signIn.status;
    expect(signIn.headers.get('set-cookie')).toBeNull();
    expect(answers).toEqual({
      'GET /api/demo/users': 404,
      'GET /api/demo/tracks': 404,
      'GET /api/demo/me': 404,
      'GET /': 404,
      'GET /index.html': 404,
      'POST /api/demo/session': 404,
    });
  });

  test('prints neither secret nor any token, also in the request logs of both paths', async () => {
    const admin = { Authorization: `Bearer ${OPERATOR_ADMIN}`, 'Content-Type': 'application/json' };
    const put = (p: string, body: unknown) =>
      fetch(`${replica.url}/api/admin${p}`, {
        method: 'PUT',
        headers: admin,
        body: JSON.stringify(body),
      });
    // The catalogue comes from the main application here (201: created).
    const created = [
      await put('/users/9', { username: 'ops', is_creator: true, is_team: false }),
      await put('/albums/9', { title: 'Ops', created_by_id: 9 }),
      await put('/tracks/ops-1', { title: 'Ops', album_id: 9 }),
    ];
    expect(created.map((r) => r.status)).toEqual([201, 201, 201]);
    const wrongAdmin = await fetch(`${replica.url}/api/admin/users/9`, {
      method: 'PUT',
      headers: { ...admin, Authorization: `Bearer ${OPERATOR_ADMIN}-wrong` },
      body: JSON.stringify({ username: 'ops', is_creator: false, is_team: false }),
    });
    expect([401, 403]).toContain(wrongAdmin.status);

    const jwt = await token(9);
    const comments = `${replica.url}/api/tracks/ops-1/comments`;
    const json = { 'Content-Type': 'application/json' };
    // The lean write path: Bearer, cookie, and the admin token where a user token belongs.
    const bearer = await fetch(comments, {
      method: 'POST',
      headers: { ...json, Authorization: `Bearer ${jwt}` },
      body: JSON.stringify({ content: 'by bearer' }),
    });
    expect(bearer.status).toBe(201);
    const cookie = await fetch(comments, {
      method: 'POST',
      headers: { ...json, Cookie: `access_token=${jwt}; other=${OPERATOR_SECRET}` },
      body: JSON.stringify({ content: 'by cookie' }),
    });
    expect(cookie.status).toBe(201);
    const adminAsUser = await fetch(comments, {
      method: 'POST',
      headers: { ...json, Authorization: `Bearer ${OPERATOR_ADMIN}` },
      body: JSON.stringify({ content: 'admin token' }),
    });
    expect(adminAsUser.status).toBe(401);
    // The lean stream path, then express with the token in the query (never accepted).
    const abort = new AbortController();
    const stream = await fetch(`${replica.url}/api/tracks/ops-1/events`, {
      headers: { Authorization: `Bearer ${jwt}` },
      signal: abort.signal,
    });
    expect(stream.status).toBe(200);
    abort.abort();
    expect((await fetch(`${comments}?access_token=${jwt}`)).status).toBe(401);
    expect((await fetch(comments, { headers: { Authorization: `Bearer ${jwt}` } })).status).toBe(
      200,
    );

    // The requests were logged (so their absence below means something), on both paths.
    await waitFor(
      () =>
        ['"statusCode":201', 'stream opened', '"GET"'].every((s) => replica.output().includes(s)),
      { what: 'request log lines' },
    );
    const out = replica.output();
    expect(out).toContain('"statusCode":401');
    expect(out).not.toContain(OPERATOR_ADMIN);
    expect(out).not.toContain(OPERATOR_SECRET);
    expect(out).not.toMatch(JWT);
    expect(out).not.toContain(jwt.split('.')[2]!);
    expect(out.toLowerCase()).not.toContain('authorization');
    expect(out.toLowerCase()).not.toContain('cookie');
  });
});

describe('the development embedded default, with AUTH_SECRET and ADMIN_TOKEN set, HOST unset', () => {
  let replica: Replica;

  beforeAll(async () => {
    replica = await startEmbedded({
      NODE_ENV: 'development',
      AUTH_SECRET: OPERATOR_SECRET,
      ADMIN_TOKEN: OPERATOR_ADMIN,
      HOST: undefined,
    });
    await waitFor(() => replica.output().includes('Try:'), { what: 'the banner' });
  });

  test('prints neither secret, nor any token signed with the operator secret', () => {
    const out = replica.output();
    expect(out).not.toContain(OPERATOR_ADMIN);
    expect(out).not.toContain(OPERATOR_SECRET);
    expect(out).not.toMatch(JWT);
    expect(out).toContain('Admin token: the ADMIN_TOKEN you set (not printed)');
  });

  test('still seeds the demo and serves its sign-in, on this machine', async () => {
    const signIn = await fetch(`${replica.url}/api/demo/session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user_id: 1 }),
    });
    expect(signIn.status).toBe(200);
  });

  test('listens on 127.0.0.1 only, and the banner says so', async () => {
    expect(listeningAddresses(replica.port)).toEqual(['127.0.0.1']);
    const other = nonLoopbackAddress();
    if (other) expect(await tryConnect(other, replica.port)).toBe('ECONNREFUSED');
    expect(replica.output()).toContain(
      `on http://127.0.0.1:${replica.port}, listening on 127.0.0.1 only`,
    );
  });
});

describe('the development embedded default, with only ADMIN_TOKEN set, HOST=0.0.0.0', () => {
  let replica: Replica;
  let dataDir: string;

  beforeAll(async () => {
    replica = await startEmbedded({
      NODE_ENV: 'development',
      AUTH_SECRET: undefined,
      ADMIN_TOKEN: OPERATOR_ADMIN,
      HOST: '0.0.0.0',
    });
    dataDir = dataDirs[dataDirs.length - 1]!;
    await waitFor(() => replica.output().includes('Try:'), { what: 'the banner' });
  });

  test('prints demo tokens of the generated secret, which work, but not the operator admin token', async () => {
    const out = replica.output();
    expect(out).not.toContain(OPERATOR_ADMIN);
    const alice = /^\s+alice\s+(\S+)$/m.exec(out)?.[1];
    expect(alice).toMatch(JWT);
    const list = await fetch(`${replica.url}/api/tracks/night-drive-01/comments`, {
      headers: { Authorization: `Bearer ${alice}` },
    });
    expect(list.status).toBe(200);
  });

  test('keeps only the generated secret in DATA_DIR, not the operator admin token', () => {
    const saved = fs.readFileSync(path.join(dataDir, 'dev-secrets.json'), 'utf8');
    expect(Object.keys(JSON.parse(saved) as object)).toEqual(['authSecret']);
    expect(saved).not.toContain(OPERATOR_ADMIN);
  });

  test('HOST=0.0.0.0 binds all interfaces, and the banner says other machines can reach it', async () => {
    expect(listeningAddresses(replica.port)).toEqual(['0.0.0.0']);
    const other = nonLoopbackAddress();
    if (other) expect(await tryConnect(other, replica.port)).toBe('connected');
    expect(replica.output()).toMatch(/listening on all interfaces \(0\.0\.0\.0\): other machines/);
  });
});
