/**
 * "Deleted means gone" and the lock-order statements on the embedded database (PGlite), the
 * default for one machine: a reply (its parent's key-share lock), an edit and a delete that
 * rewrite the comment's stored events, then a replay from the beginning; afterwards marking
 * published and pruning (which skip locked events) run on the same database.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { loadConfig } from '../src/config/config';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../src/store/embedded-db';
import { PrismaEventLog } from '../src/store/event-log';
import { createPrisma } from '../src/store/prisma';
import { startServer, type RunningServer } from '../src/server';
import { userToken } from '../harness/replica';
import { SseClient, numericIds, type CommentJson } from './support/sse-client';
import { embeddedTestEnv } from './support/rest-env';

// PGlite's first start runs initdb (several seconds on a busy machine).
jest.setTimeout(180_000);

const DEMO = { alice: 1, bob: 2, carol: 3 } as const;
const TRACK = 'night-drive-01';
const SECRET = '555-0100';
const DRAFT = 'draft-v1';

let dataDir: string;
let running: RunningServer | undefined;
let database: EmbeddedDatabase | undefined;
let stream: SseClient | undefined;

beforeAll(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tc-gone-embedded-'));
});

afterAll(async () => {
  try {
    stream?.close();
    await running?.shutdown('test');
    await database?.stop();
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

const as = async (user: keyof typeof DEMO) => ({
  Authorization: `Bearer ${await userToken(DEMO[user])}`,
});

test('replay on the embedded database carries no deleted or superseded text', async () => {
  running = await startServer(loadConfig(embeddedTestEnv(dataDir)), { quiet: true });
  const app = running.handler;
  const post = async (user: keyof typeof DEMO, body: Record<string, unknown>) => {
    const res = await request(app)
      .post(`/api/tracks/${TRACK}/comments`)
      .set(await as(user))
      .send(body);
    expect(res.status).toBe(201);
    return res.body.comment as CommentJson;
  };
  const secret = await post('alice', { content: `call me at ${SECRET} @bob` });
  const reply = await post('bob', { content: `ok, ${SECRET} it is`, parent_id: secret.id });
  const kept = await post('carol', { content: `${DRAFT} @bob` });
  const edited = await request(app)
    .patch(`/api/comments/${kept.id}`)
    .set(await as('carol'))
    .send({ content: 'final' });
  expect(edited.status).toBe(200);
  const del = await request(app)
    .delete(`/api/comments/${secret.id}`)
    .set(await as('alice'));
  expect(del.status).toBe(204);

  stream = await SseClient.open(`${running.url}/api/tracks/${TRACK}/events`, {
    token: await userToken(DEMO.carol),
    lastEventId: '0',
  });
  expect(stream.status).toBe(200);
  await stream.waitForEvents((e) => e.id !== undefined, 6);
  const replayed = stream.storedEvents();
  expect(numericIds(replayed)).toEqual([1, 2, 3, 4, 5, 6]);
  expect(replayed.map((e) => e.event)).toEqual([
    'new_comment',
    'new_comment',
    'new_comment',
    'comment_edited',
    'comment_deleted',
    'comment_deleted',
  ]);
  for (const e of replayed) {
    expect(e.rawData).not.toContain(SECRET);
    expect(e.rawData).not.toContain(DRAFT);
  }
  expect(replayed.map((e) => e.data.comment?.content ?? e.data.content ?? null)).toEqual([
    '',
    '',
    'final',
    'final',
    null,
    null,
  ]);
  expect(replayed[1]!.data.comment).toMatchObject({ id: reply.id, parent_id: secret.id });
  stream.close();
  expect(await running.shutdown('test')).toBe(0);
  running = undefined;

  // The relay's marking and pruning statements, on the same (now idle) database.
  database = await startEmbeddedDatabase({ dataDir });
  const prisma = createPrisma(database.connectionString, 1);
  try {
    const log = new PrismaEventLog(prisma);
    const stored = await prisma.streamEvent.findMany({
      orderBy: [{ stream: 'asc' }, { seq: 'asc' }],
    });
    expect(stored.some((e) => JSON.stringify(e.data).includes(SECRET))).toBe(false);
    expect(stored.some((e) => JSON.stringify(e.data).includes(DRAFT))).toBe(false);
    await log.markPublished(stored.map((e) => ({ stream: e.stream, seq: Number(e.seq) })));
    expect(await prisma.streamEvent.count({ where: { publishedAt: null } })).toBe(0);
    expect(await log.pruneBefore(new Date(Date.now() + 60_000))).toBe(stored.length);
    expect(await prisma.streamEvent.count()).toBe(0);
  } finally {
    await prisma.$disconnect();
  }
});
