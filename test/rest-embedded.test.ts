/**
 * The embedded default (contract section 6): no DATABASE_URL and no
 * REDIS_URL → an embedded database in DATA_DIR with migrations applied and
 * demo data seeded once; data survives a restart on the same directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { loadConfig } from '../src/config/config';
import { startServer, type RunningServer } from '../src/server';
import { captureLogger, embeddedTestEnv, expectError, type Comment } from './support/rest-env';
import { TEST_ADMIN_TOKEN, userToken } from '../harness/replica';

const DEMO = { alice: 1, bob: 2, carol: 3, dave: 4 } as const;
const TRACKS = ['night-drive-01', 'night-drive-02', 'night-drive-03'];

let dataDir: string;
let running: RunningServer | undefined;

/** Starts the embedded default on `dataDir`; returns the server and what it logged. */
async function startEmbedded() {
  const logs = captureLogger('info');
  const config = loadConfig(embeddedTestEnv(dataDir));
  expect(config.databaseUrl).toBeUndefined();
  expect(config.redisUrl).toBeUndefined();
  running = await startServer(config, { logger: logs.logger, quiet: true });
  return { server: running, logs };
}

async function stopEmbedded() {
  const server = running;
  running = undefined;
  if (server) expect(await server.shutdown('test')).toBe(0);
}

const as = async (user: keyof typeof DEMO) => ({
  Authorization: `Bearer ${await userToken(DEMO[user])}`,
});

beforeAll(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tc-embedded-'));
});

afterAll(async () => {
  try {
    await running?.shutdown('test');
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('first start migrates and seeds; a comment survives a restart; demo data is seeded only once', async () => {
  // ---- first start: fresh directory ----
  const first = await startEmbedded();
  const app = first.server.handler;
  expect(first.logs.text()).toMatch(/applied migration \d+_\w+/);
  expect(first.logs.text()).toContain('seeded demo data');
  expect((await request(app).get('/readyz')).status).toBe(200);

  // Demo tracks exist, others do not.
  for (const track of TRACKS) {
    const res = await request(app)
      .get(`/api/tracks/${track}/comments`)
      .set(await as('bob'));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ comments: [], next_cursor: null });
  }
  expectError(
    await request(app)
      .get('/api/tracks/night-drive-04/comments')
      .set(await as('bob')),
    404,
  );

  // Demo users exist with their names: alice posts, naming the others.
  const created = await request(app)
    .post(`/api/tracks/${TRACKS[0]}/comments`)
    .set(await as('alice'))
    .send({ content: 'hello @bob @carol @dave', timestamp: 42 });
  expect(created.status).toBe(201);
  const comment = created.body.comment as Comment;
  expect(comment.user).toEqual({ id: DEMO.alice, username: 'alice' });
  expect(comment.mentions).toEqual([
    { id: DEMO.bob, username: 'bob' },
    { id: DEMO.carol, username: 'carol' },
    { id: DEMO.dave, username: 'dave' },
  ]);
  const listed = await request(app)
    .get(`/api/tracks/${TRACKS[0]}/comments`)
    .set(await as('dave'));
  expect(listed.body.comments).toEqual([comment]);

  // Demo page at /.
  const page = await request(app).get('/');
  expect(page.status).toBe(200);
  expect(page.headers['content-type']).toMatch(/^text\/html/);

  // A catalogue change that re-seeding would undo.
  const renamed = await request(app)
    .put(`/api/admin/users/${DEMO.dave}`)
    .set('Authorization', `Bearer ${TEST_ADMIN_TOKEN}`)
    .send({ username: 'david' });
  expect(renamed.status).toBe(200);

  await stopEmbedded();

  // ---- second start: same directory ----
  const second = await startEmbedded();
  const app2 = second.server.handler;
  expect(second.logs.text()).not.toContain('applied migration');
  expect(second.logs.text()).not.toContain('seeded demo data');

  const again = await request(app2)
    .get(`/api/tracks/${TRACKS[0]}/comments`)
    .set(await as('bob'));
  expect(again.status).toBe(200);
  // Mentions show users as they are now: dave was renamed above.
  const renamedMentions = comment.mentions.map((m) =>
    m.id === DEMO.dave ? { ...m, username: 'david' } : m,
  );
  expect(again.body.comments).toEqual([{ ...comment, mentions: renamedMentions }]);

  // dave is still "david": the demo seed did not run over the catalogue again.
  const check = await request(app2)
    .post(`/api/tracks/${TRACKS[1]}/comments`)
    .set(await as('bob'))
    .send({ content: 'hi @david and @dave' });
  expect(check.status).toBe(201);
  expect(check.body.comment.mentions).toEqual([{ id: DEMO.dave, username: 'david' }]);

  await stopEmbedded();
});
