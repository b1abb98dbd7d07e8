/**
 * Bad input on the comment endpoints (contract section 4, "Rules for every
 * endpoint"): statuses, the error body, and "nothing is half-written" —
 * including a failure forced inside the transaction by a database trigger.
 */
import request from 'supertest';
import {
  TRACK_TIMED,
  TRACK_UNTIMED,
  USERS,
  expectError,
  rowCounts,
  useRestEnv,
} from './support/rest-env';

const env = useRestEnv();
/** A comment on TRACK_UNTIMED (for parent checks). */
let untimedComment: number;

beforeAll(async () => {
  untimedComment = (await env().postComment('bob', TRACK_UNTIMED, { content: 'parent elsewhere' }))
    .id;
});

const post = (body: unknown, trackId = TRACK_TIMED) =>
  request(env().app)
    .post(`/api/tracks/${trackId}/comments`)
    .set(env().as('dan'))
    .send(body as object);

const postRaw = (contentType: string, raw: string | Buffer, trackId = TRACK_TIMED) =>
  request(env().app)
    .post(`/api/tracks/${trackId}/comments`)
    .set(env().as('dan'))
    .set('Content-Type', contentType)
    .send(raw);

/** Runs `fn` and asserts it left no comment, mention, event or seq behind. */
async function leavesNothing(fn: () => Promise<void>): Promise<void> {
  const before = await rowCounts(env().pg);
  await fn();
  expect(await rowCounts(env().pg)).toEqual(before);
}

describe('comment body validation (JSON)', () => {
  test.each([
    ['missing content', { timestamp: 1 }],
    ['empty content', { content: '' }],
    ['whitespace-only content', { content: ' \n\t  ' }],
    ['2001 characters', { content: 'a'.repeat(2001) }],
    ['2001 characters inside whitespace', { content: `  ${'a'.repeat(2001)}  ` }],
    ['content as a number', { content: 12 }],
    ['content as null', { content: null }],
    ['content as an array', { content: ['hi'] }],
    ['2001 characters outside the BMP', { content: '\u{1F600}'.repeat(2001) }],
    ['a NUL character in the content', { content: 'a\u0000b' }],
    ['negative timestamp', { content: 'x', timestamp: -0.5 }],
    ['timestamp as a string', { content: 'x', timestamp: '5' }],
    ['timestamp as null', { content: 'x', timestamp: null }],
    ['timestamp as a boolean', { content: 'x', timestamp: true }],
    ['timestamp past the duration', { content: 'x', timestamp: 61 }],
    ['parent_id 0', { content: 'x', parent_id: 0 }],
    ['parent_id -1', { content: 'x', parent_id: -1 }],
    ['parent_id 1.5', { content: 'x', parent_id: 1.5 }],
    ['parent_id as a string', { content: 'x', parent_id: '1' }],
    ['parent_id that names no comment', { content: 'x', parent_id: 2_000_000_000 }],
    ['an unknown field', { content: 'x', mood: 'happy' }],
    ['a user_id field (no impersonation through the body)', { content: 'x', user_id: 2 }],
    ['a track_id field', { content: 'x', track_id: TRACK_UNTIMED }],
  ])('%s → 400 and nothing written', async (_name, body) => {
    await leavesNothing(async () => expectError(await post(body), 400));
  });

  test('parent_id on another track → 400 and nothing written', async () => {
    await leavesNothing(async () =>
      expectError(await post({ content: 'cross-track reply', parent_id: untimedComment }), 400),
    );
  });

  test('content length counts characters, not UTF-16 units: 2000 emoji are accepted', async () => {
    const c = await env().postComment('dan', TRACK_UNTIMED, { content: '\u{1F3B5}'.repeat(2000) });
    expect([...c.content]).toHaveLength(2000);
  });

  test('Infinity (1e999 in JSON) as timestamp → 400', async () => {
    await leavesNothing(async () =>
      expectError(
        await postRaw('application/json', '{"content":"x","timestamp":1e999}', TRACK_UNTIMED),
        400,
      ),
    );
  });

  test.each(['NaN', 'Infinity', '-Infinity'])(
    'a bare %s token is not JSON → 400',
    async (token) => {
      expectError(
        await postRaw('application/json', `{"content":"x","timestamp":${token}}`, TRACK_UNTIMED),
        400,
      );
    },
  );

  test('invalid JSON → 400', async () => {
    expectError(await postRaw('application/json', '{"content": "x",'), 400, 'invalid_json');
  });

  test.each([
    ['an array', '[{"content":"x"}]'],
    ['a string', '"just a string"'],
    ['null', 'null'],
  ])('a JSON body that is %s → 400', async (_name, raw) => {
    expectError(await postRaw('application/json', raw), 400);
  });

  test('no body at all → 400 (content is required)', async () => {
    const res = await request(env().app)
      .post(`/api/tracks/${TRACK_TIMED}/comments`)
      .set(env().as('dan'));
    expectError(res, 400);
  });
});

describe('comment body validation (form-urlencoded)', () => {
  test.each([
    ['timestamp=abc', 'content=x&timestamp=abc'],
    ['timestamp=NaN', 'content=x&timestamp=NaN'],
    ['timestamp=Infinity', 'content=x&timestamp=Infinity'],
    ['timestamp=-1', 'content=x&timestamp=-1'],
    ['timestamp past the duration', 'content=x&timestamp=60.5'],
    ['timestamp=0x10 (hex is not a decimal number)', 'content=x&timestamp=0x10'],
    ['timestamp=0b1', 'content=x&timestamp=0b1'],
    ['parent_id=x', 'content=x&parent_id=x'],
    ['content given twice', 'content=a&content=b'],
    ['parent_id=1.5', 'content=x&parent_id=1.5'],
    ['whitespace-only content', 'content=+++'],
    ['no content', 'timestamp=3'],
    ['an unknown field', 'content=x&user_id=2'],
  ])('%s → 400 and nothing written', async (_name, raw) => {
    await leavesNothing(async () =>
      expectError(await postRaw('application/x-www-form-urlencoded', raw), 400),
    );
  });
});

describe('content types and sizes', () => {
  test.each([
    ['text/plain', 'content=hello'],
    ['application/xml', '<comment>hi</comment>'],
    ['application/octet-stream', 'hello'],
    [
      'multipart/form-data; boundary=xyz',
      '--xyz\r\nContent-Disposition: form-data; name="content"\r\n\r\nhi\r\n--xyz--\r\n',
    ],
  ])('%s → 415 and nothing written', async (type, raw) => {
    await leavesNothing(async () => expectError(await postRaw(type, raw), 415));
  });

  test('text/plain on PATCH → 415', async () => {
    const c = await env().postComment('dan', TRACK_UNTIMED, { content: 'patch me' });
    const res = await request(env().app)
      .patch(`/api/comments/${c.id}`)
      .set(env().as('dan'))
      .set('Content-Type', 'text/plain')
      .send('content=changed');
    expectError(res, 415);
  });

  test('a JSON charset other than UTF-8 → 415', async () => {
    expectError(await postRaw('application/json; charset=latin1', '{"content":"x"}'), 415);
  });

  test('a body over 16 KB → 413 (JSON and form), nothing written', async () => {
    const big = 'b'.repeat(17 * 1024);
    await leavesNothing(async () => {
      expectError(await post({ content: big }), 413);
      expectError(await postRaw('application/x-www-form-urlencoded', `content=${big}`), 413);
    });
  });

  test('a body just under 16 KB is read (then refused for its content length: 400)', async () => {
    expectError(await post({ content: 'c'.repeat(15 * 1024) }), 400);
  });
});

describe('routing errors keep the error shape', () => {
  test('unknown route under /api → 404', async () => {
    expectError(await request(env().app).get('/api/nothing-here').set(env().as('bob')), 404);
  });

  test('unknown route outside /api → 404', async () => {
    expectError(await request(env().app).get('/nothing-here'), 404);
  });

  test('a method the path does not have → 404', async () => {
    expectError(
      await request(env().app)
        .put(`/api/tracks/${TRACK_TIMED}/comments`)
        .set(env().as('bob'))
        .send({}),
      404,
    );
  });

  test('a track id outside the id alphabet → 404', async () => {
    expectError(
      await request(env().app).get('/api/tracks/a%20b/comments').set(env().as('bob')),
      404,
    );
  });
});

describe('nothing is half-written', () => {
  test('refused edits and deletes change no row and store no event', async () => {
    const c = await env().postComment('bob', TRACK_UNTIMED, { content: 'guarded @erin_5' });
    await leavesNothing(async () => {
      const patch = (as: 'bob' | 'dan', body: object) =>
        request(env().app).patch(`/api/comments/${c.id}`).set(env().as(as)).send(body);
      expectError(await patch('dan', { content: 'not yours' }), 403);
      expectError(await patch('bob', { content: '' }), 400);
      expectError(await patch('bob', { content: 'x'.repeat(2001) }), 400);
      expectError(
        await request(env().app).delete(`/api/comments/${c.id}`).set(env().as('dan')),
        403,
      );
    });
    const { rows } = await env().pg.query('SELECT content, is_edited FROM comments WHERE id = $1', [
      c.id,
    ]);
    expect(rows).toEqual([{ content: 'guarded @erin_5', is_edited: false }]);
  });

  describe('a failure inside the transaction (forced by a trigger on stream_events)', () => {
    const MARKER = 'FAIL-IN-TX';

    beforeAll(async () => {
      // Raises on the *last* event a change writes: earlier rows of the same transaction
      // (comment, mentions, other events, head seqs) exist by then and must be rolled back.
      await env().pg.query(`
        CREATE TABLE test_fail_deleted (comment_id int PRIMARY KEY);
        CREATE FUNCTION test_fail_marked() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF (NEW.type = 'mention' AND NEW.data->'comment'->>'content' LIKE '%${MARKER}%')
             OR (NEW.type = 'comment_edited' AND NEW.data->>'content' LIKE '%${MARKER}%')
             OR (NEW.type = 'comment_deleted'
                 AND (NEW.data->>'comment_id')::int IN (SELECT comment_id FROM test_fail_deleted)) THEN
            RAISE EXCEPTION 'forced failure for a test';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER test_fail_marked BEFORE INSERT ON stream_events
          FOR EACH ROW EXECUTE FUNCTION test_fail_marked();`);
    });

    afterAll(async () => {
      await env().pg.query(`
        DROP TRIGGER IF EXISTS test_fail_marked ON stream_events;
        DROP FUNCTION IF EXISTS test_fail_marked();
        DROP TABLE IF EXISTS test_fail_deleted;`);
    });

    test('create: 500 with the error shape; no comment, mention, event or seq is left', async () => {
      const track = await env().newTrack();
      await leavesNothing(async () => {
        // Events are written track stream first, so new_comment is in before the mention fails.
        const res = await post({ content: `${MARKER} hey @bob`, timestamp: 1 }, track);
        expectError(res, 500, 'internal_error');
      });
      const { rows } = await env().pg.query('SELECT 1 FROM comments WHERE content LIKE $1', [
        `%${MARKER}%`,
      ]);
      expect(rows).toHaveLength(0);
      const heads = await env().pg.query('SELECT 1 FROM stream_heads WHERE stream = $1', [
        `track:${track}`,
      ]);
      expect(heads.rows).toHaveLength(0);
      // The service is fine afterwards.
      const ok = await env().postComment('dan', track, { content: 'after the failure @bob' });
      expect(ok.mentions).toEqual([{ id: USERS.bob.id, username: USERS.bob.username }]);
    });

    test('edit: 500; content, flags and mentions unchanged; no event', async () => {
      const c = await env().postComment('dan', TRACK_UNTIMED, { content: 'before @bob' });
      await leavesNothing(async () => {
        const res = await request(env().app)
          .patch(`/api/comments/${c.id}`)
          .set(env().as('dan'))
          .send({ content: `${MARKER} now @erin_5` });
        expectError(res, 500, 'internal_error');
      });
      const { rows } = await env().pg.query(
        `SELECT c.content, c.is_edited, c.last_edited_at,
                array(SELECT user_id FROM comment_mentions m WHERE m.comment_id = c.id ORDER BY user_id) AS mentioned
           FROM comments c WHERE c.id = $1`,
        [c.id],
      );
      expect(rows).toEqual([
        {
          content: 'before @bob',
          is_edited: false,
          last_edited_at: null,
          mentioned: [USERS.bob.id],
        },
      ]);
    });

    test('delete of a thread: 500; parent and replies all remain; no event', async () => {
      const track = await env().newTrack();
      const parent = await env().postComment('bob', track, { content: 'thread root' });
      const reply = await env().postComment('dan', track, {
        content: 'reply',
        parent_id: parent.id,
      });
      await env().pg.query('INSERT INTO test_fail_deleted VALUES ($1)', [reply.id]);
      await leavesNothing(async () => {
        const res = await request(env().app)
          .delete(`/api/comments/${parent.id}`)
          .set(env().as('bob'));
        expectError(res, 500, 'internal_error');
      });
      const { rows } = await env().pg.query(
        'SELECT id FROM comments WHERE track_id = $1 ORDER BY id',
        [track],
      );
      expect(rows.map((r) => r.id)).toEqual([parent.id, reply.id]);
    });
  });
});
