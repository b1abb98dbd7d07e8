/**
 * The catalogue's track read against the real PostgreSQL: one statement on the pool, with the
 * album's title and creator, the same shape and types the Prisma read had (a float duration or
 * null, numeric ids), and the short cache that keeps it off most requests.
 */
import { CatalogStore } from '../src/store/catalog-store';
import { createDatabase, type Database, type SqlQuery } from '../src/store/prisma';
import { createTestDatabase, type TestDatabase } from '../harness/test-db';

let db: TestDatabase;
let database: Database;
beforeAll(async () => {
  db = await createTestDatabase();
  database = createDatabase(db.url, 2);
  const { prisma } = database;
  await prisma.user.create({ data: { id: 7, username: 'maker', isCreator: true, isTeam: false } });
  await prisma.album.create({ data: { id: 3, title: 'Album "x"', createdById: 7 } });
  await prisma.track.create({
    data: { id: 'timed', title: 'Timed', albumId: 3, durationS: 187.5 },
  });
  await prisma.track.create({ data: { id: 'open', title: 'Open', albumId: 3, durationS: null } });
});
afterAll(async () => {
  await database?.prisma.$disconnect();
  await db?.drop();
});

/** The pool's statement runner, counting what it runs. */
function countingQuery(): { query: SqlQuery; texts: string[] } {
  const texts: string[] = [];
  const query: SqlQuery = (text, values) => {
    texts.push(text);
    return database.query(text, values);
  };
  return { query, texts };
}

test('a track comes with its album, typed as the domain wants, in one statement', async () => {
  const { query, texts } = countingQuery();
  const store = new CatalogStore(database.prisma, query, 0);
  expect(await store.findTrack('timed')).toEqual({
    id: 'timed',
    title: 'Timed',
    album_id: 3,
    duration_s: 187.5,
    album_title: 'Album "x"',
    album_creator_id: 7,
  });
  expect(await store.findTrack('open')).toEqual({
    id: 'open',
    title: 'Open',
    album_id: 3,
    duration_s: null,
    album_title: 'Album "x"',
    album_creator_id: 7,
  });
  expect(await store.findTrack('missing')).toBeNull();
  expect(texts).toHaveLength(3);
});

test('a found track is cached for the cache time; a missing one is asked again', async () => {
  const { query, texts } = countingQuery();
  const store = new CatalogStore(database.prisma, query, 60_000);
  await store.findTrack('timed');
  await store.findTrack('timed');
  await store.findTrack('missing');
  await store.findTrack('missing');
  expect(texts).toHaveLength(3);
});
