/**
 * Input that PostgreSQL could not take is refused at validation (contract section 7, issue 9
 * findings 1 and 11), on PostgreSQL and on the embedded database, by the lean paths and by
 * express alike: text must be well-formed Unicode without NUL (`content`, `title`,
 * `username`), track ids are opaque strings of `A-Z a-z 0-9 - . _ ~ :`, and numbers, ids
 * and cursors the database cannot hold are 4xx. Every refusal is the contract's error body
 * and writes nothing; the next ordinary request is served as if it never happened.
 */
import fc from 'fast-check';
import type { RunningServer } from '../src/server';
import { adminPutOver, seedCatalog, userTokens } from '../harness/catalog';
import { DB_TARGETS, type DbTarget } from './support/db-targets';
import { httpRequest, jsonRequest, type HttpAnswer } from '../harness/http';
import { TEST_ADMIN_TOKEN } from '../harness/replica';
import { SseClient, type CommentJson } from './support/sse-client';

const USERS = {
  author: { id: 201, username: 'hostile_author', is_creator: false, is_team: false },
  owner: { id: 202, username: 'hostile_owner', is_creator: true, is_team: false },
};
type UserKey = keyof typeof USERS;
const ALBUM_ID = 201;
const TRACK = 'hostile-track';
/** The id the contract's example names: every character class of the alphabet. */
const OPAQUE = 'acc.opaque-Track~1';

/** Not storable as sent: lone surrogates (high, low, reversed pair, at the end) and NUL. */
const MALFORMED = ['x \ud800', '\udc00 y', 'a\udc00\ud800b', 'end \ud83d', 'nul \u0000 inside'];

/**
 * Bytes that are not UTF-8: a lone surrogate's encoding, an overlong `/`, a cut-off sequence,
 * a stray continuation byte, a byte UTF-8 never uses, and a code point past U+10FFFF.
 */
const NOT_UTF8 = [
  [0xed, 0xa0, 0x80],
  [0xc0, 0xaf],
  [0xe2, 0x82],
  [0x80],
  [0xff],
  [0xf4, 0x90, 0x80, 0x80],
];

/** Well-formed text that must be stored and served exactly (through jsonb too). */
const WELL_FORMED = [
  'astral 🎧 𝄞 and a pair \ud83c\udfa7',
  'noncharacters \uffff \ufffe, replacement \ufffd',
  'controls \u0001\u001f\u007f\u0085',
  'separators \u2028 \u2029, BOM in\ufeffside',
  'quote " backslash \\ and the text \\u0000 \\ud800',
];

const expectError = (res: HttpAnswer, status: number, code: string) => {
  expect([res.status, res.json]).toEqual([
    status,
    { error: { code, message: expect.stringMatching(/\S/) } },
  ]);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
};

describe.each(DB_TARGETS)('on %s', (kind, makeTarget) => {
  let target: DbTarget;
  let running: RunningServer;
  let tokens: Record<UserKey, string>;
  const streams: SseClient[] = [];

  beforeAll(async () => {
    target = await makeTarget();
    running = await target.startServer();
    await seedCatalog(
      adminPutOver(() => running.url),
      {
        users: USERS,
        album: { id: ALBUM_ID, title: 'Hostile Album', created_by_id: USERS.owner.id },
        tracks: [{ id: TRACK }],
      },
    );
    tokens = await userTokens(USERS);
  });
  afterAll(async () => {
    for (const s of streams) s.close();
    await target?.close();
  });

  const api = (method: string, path: string, body?: unknown, user: UserKey = 'author') =>
    jsonRequest(`${running.url}${path}`, method, { token: tokens[user], body });
  const admin = (path: string, body: unknown) =>
    jsonRequest(`${running.url}${path}`, 'PUT', { token: TEST_ADMIN_TOKEN, body });
  const commentsOf = (track: string) => `/api/tracks/${track}/comments`;
  const openStream = async (path: string, lastEventId?: string) => {
    const s = await SseClient.open(`${running.url}${path}`, {
      token: tokens.owner,
      lastEventId,
    });
    streams.push(s);
    return s;
  };
  const list = async (track: string): Promise<CommentJson[]> => {
    const res = await api('GET', `${commentsOf(track)}?order=created&limit=200`);
    expect(res.status).toBe(200);
    return (res.json as { comments: CommentJson[] }).comments;
  };

  /** The finding's check: after whatever came before, the ordinary requests are served. */
  async function stillServes(track: string): Promise<void> {
    const stream = await openStream(`/api/tracks/${encodeURIComponent(track)}/events`);
    expect(stream.status).toBe(200);
    await stream.waitForEvent((e) => e.event === 'connected');
    const posted = await api('POST', commentsOf(track), { content: 'an ordinary comment' });
    expect(posted.status).toBe(201);
    const id = (posted.json as { comment: CommentJson }).comment.id;
    await stream.waitForEvent((e) => e.data.comment?.id === id);
    expect((await list(track)).map((c) => c.id)).toContain(id);
    expect((await jsonRequest(`${running.url}/readyz`, 'GET')).status).toBe(200);
    stream.close();
  }

  test('malformed content, title and username: 400 invalid_input on every path, nothing written', async () => {
    const original = (await api('POST', commentsOf(TRACK), { content: 'original text' })).json as {
      comment: CommentJson;
    };
    const before = await list(TRACK);
    for (const [i, text] of MALFORMED.entries()) {
      // The lean write path, and the same request answered by express (a query string).
      const lean = await api('POST', commentsOf(TRACK), { content: text });
      expectError(lean, 400, 'invalid_input');
      expect((lean.json as { error: { message: string } }).error.message).toMatch(/well-formed/);
      const viaApp = await api('POST', `${commentsOf(TRACK)}?via=app`, { content: text });
      expect([viaApp.status, viaApp.json]).toEqual([lean.status, lean.json]);
      expectError(
        await api('PATCH', `/api/comments/${original.comment.id}`, { content: text }),
        400,
        'invalid_input',
      );
      // Admin upserts of ids that do not exist yet: refused, then created by a valid body.
      expectError(
        await admin(`/api/admin/tracks/bad-title-${i}`, { title: text, album_id: ALBUM_ID }),
        400,
        'invalid_input',
      );
      expect(
        (await admin(`/api/admin/tracks/bad-title-${i}`, { title: 'ok', album_id: ALBUM_ID }))
          .status,
      ).toBe(201);
      expectError(
        await admin(`/api/admin/albums/${300 + i}`, {
          title: text,
          created_by_id: USERS.owner.id,
        }),
        400,
        'invalid_input',
      );
      expectError(
        await admin(`/api/admin/users/${300 + i}`, { username: `u${text}` }),
        400,
        'invalid_input',
      );
      expect((await admin(`/api/admin/users/${300 + i}`, { username: `u_${i}` })).status).toBe(201);
    }
    // A form carries NUL as %00 (a lone surrogate's bytes are not UTF-8: the next test).
    const form = await httpRequest(`${running.url}${commentsOf(TRACK)}`, 'POST', {
      headers: {
        Authorization: `Bearer ${tokens.author}`,
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: 'content=a%00b',
    });
    expectError(form, 400, 'invalid_input');
    // Nothing was written, and the comment the PATCHes named is unchanged.
    expect(await list(TRACK)).toEqual(before);
    await stillServes(TRACK);
  });

  test('a body whose bytes are not UTF-8 is 400 invalid_input on every path, never stored as U+FFFD', async () => {
    const original = (await api('POST', commentsOf(TRACK), { content: 'kept as it was' })).json as {
      comment: CommentJson;
    };
    const before = await list(TRACK);
    const send = (method: string, path: string, type: string, body: Buffer) =>
      httpRequest(`${running.url}${path}`, method, {
        headers: { Authorization: `Bearer ${tokens.author}`, 'Content-Type': type },
        body,
      });
    const json = (bytes: number[]) =>
      Buffer.concat([Buffer.from('{"content":"a'), Buffer.from(bytes), Buffer.from('b"}')]);
    // Each of these once decoded as U+FFFD (UTF-8 decoders replace what they cannot read).
    for (const bytes of NOT_UTF8) {
      const hex = bytes.map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');
      const form = Buffer.from(`content=a${hex}b`);
      const raw = Buffer.concat([Buffer.from('content=a'), Buffer.from(bytes), Buffer.from('b')]);
      const answers = [
        // The lean path (plain JSON), then express: JSON with a query, a +json type, a PATCH.
        await send('POST', commentsOf(TRACK), 'application/json', json(bytes)),
        await send('POST', `${commentsOf(TRACK)}?via=app`, 'application/json', json(bytes)),
        await send('POST', commentsOf(TRACK), 'application/merge-patch+json', json(bytes)),
        await send(
          'PATCH',
          `/api/comments/${original.comment.id}`,
          'application/json',
          json(bytes),
        ),
        // Forms: percent-encoded bytes and raw bytes.
        await send('POST', commentsOf(TRACK), 'application/x-www-form-urlencoded', form),
        await send('POST', commentsOf(TRACK), 'application/x-www-form-urlencoded', raw),
        await send(
          'PATCH',
          `/api/comments/${original.comment.id}`,
          'application/x-www-form-urlencoded',
          form,
        ),
      ];
      for (const answer of answers) {
        expectError(answer, 400, 'invalid_input');
        expect((answer.json as { error: { message: string } }).error.message).toMatch(/UTF-8/);
      }
    }
    expect(await list(TRACK)).toEqual(before);
    // U+FFFD itself, sent as its UTF-8 bytes, is ordinary text: stored as sent on both paths.
    const replacement = [0xef, 0xbf, 0xbd];
    const viaJson = await send('POST', commentsOf(TRACK), 'application/json', json(replacement));
    const viaForm = await send(
      'POST',
      commentsOf(TRACK),
      'application/x-www-form-urlencoded',
      Buffer.from('content=a%EF%BF%BDb'),
    );
    for (const answer of [viaJson, viaForm]) {
      expect(answer.status).toBe(201);
      expect((answer.json as { comment: CommentJson }).comment.content).toBe('a\ufffdb');
    }
    await stillServes(TRACK);
  });

  test('well-formed text is stored and served exactly as sent (trimmed), through the events too', async () => {
    const stream = await openStream(`/api/tracks/${TRACK}/events`);
    await stream.waitForEvent((e) => e.event === 'connected');
    for (const text of WELL_FORMED) {
      const res = await api('POST', commentsOf(TRACK), { content: `  ${text}\n` });
      expect(res.status).toBe(201);
      const c = (res.json as { comment: CommentJson }).comment;
      expect(c.content).toBe(text);
      const event = await stream.waitForEvent((e) => e.data.comment?.id === c.id);
      expect(event.data.comment!.content).toBe(text);
      expect((await list(TRACK)).find((x) => x.id === c.id)?.content).toBe(text);
      const track = await admin(`/api/admin/tracks/${TRACK}`, { title: text, album_id: ALBUM_ID });
      expect([track.status, (track.json as { track: { title: string } }).track.title]).toEqual([
        200,
        text,
      ]);
    }
    stream.close();
  });

  test('any string as content is stored exactly (201) or refused (400): never a database error', async () => {
    // Lone surrogates are as likely as anything else among single UTF-16 units.
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.string({
        unit: fc.constantFrom('\ud800', '\udfff', '\u0000', ' ', 'a', '🎧'),
        maxLength: 6,
      }),
    );
    await fc.assert(
      fc.asyncProperty(text, async (content) => {
        const res = await api('POST', commentsOf(TRACK), { content });
        const trimmed = content.trim();
        const storable = content.isWellFormed() && !content.includes('\u0000') && trimmed !== '';
        if (storable) {
          expect(res.status).toBe(201);
          expect((res.json as { comment: CommentJson }).comment.content).toBe(trimmed);
        } else {
          expectError(res, 400, 'invalid_input');
        }
      }),
      { numRuns: 60 },
    );
    await stillServes(TRACK);
  });

  test('track ids are opaque strings of 1-128 characters of A-Z a-z 0-9 - . _ ~ :', async () => {
    const longest = 'x'.repeat(127) + '~';
    for (const id of [OPAQUE, longest, 'a:b_c-d.e~F9']) {
      expect(
        (await admin(`/api/admin/tracks/${id}`, { title: 'T', album_id: ALBUM_ID })).status,
      ).toBe(201);
      // As a path segment: the stream and the write (lean paths), the list and typing (express).
      const stream = await openStream(`/api/tracks/${id}/events`);
      expect(stream.status).toBe(200);
      await stream.waitForEvent((e) => e.event === 'connected');
      const lean = await api('POST', commentsOf(id), { content: `on ${id}` });
      expect(lean.status).toBe(201);
      expect((lean.json as { comment: CommentJson }).comment.track_id).toBe(id);
      await stream.waitForEvent((e) => e.data.comment?.content === `on ${id}`);
      expect((await api('POST', `${commentsOf(id)}?via=app`, { content: 'app' })).status).toBe(201);
      expect((await list(id)).map((c) => c.content)).toEqual([`on ${id}`, 'app']);
      expect((await api('POST', `/api/tracks/${id}/typing`, { is_typing: true })).status).toBe(202);
      stream.close();
    }
    // The same id percent-encoded (`~` as %7E) names the same track.
    expect(await list(OPAQUE.replace('~', '%7E'))).toEqual(await list(OPAQUE));

    // Outside the rule: the admin API refuses the id, user routes find no track.
    const refused = [
      'x'.repeat(129),
      'a%20b',
      'a!b',
      'a*b',
      "a'b",
      'a%00b',
      'a%2Fb',
      '%C3%A4',
      '%F0%9F%8E%A7',
    ];
    for (const id of refused) {
      expectError(
        await admin(`/api/admin/tracks/${id}`, { title: 'T', album_id: ALBUM_ID }),
        400,
        'invalid_id',
      );
      expectError(await api('GET', commentsOf(id)), 404, 'not_found');
      expectError(await api('POST', commentsOf(id), { content: 'x' }), 404, 'not_found');
      const stream = await openStream(`/api/tracks/${id}/events`);
      expect(stream.status).toBe(404);
      expect(await stream.bodyJson()).toEqual({
        error: { code: 'not_found', message: expect.any(String) },
      });
    }
    // Percent-encoding that is not UTF-8 (a lone surrogate's bytes) cannot be decoded at all.
    const undecodable = 'a%ED%A0%80';
    expectError(
      await admin(`/api/admin/tracks/${undecodable}`, { title: 'T', album_id: ALBUM_ID }),
      400,
      'bad_request',
    );
    expectError(await api('GET', commentsOf(undecodable)), 400, 'bad_request');
    expectError(await api('POST', commentsOf(undecodable), { content: 'x' }), 400, 'bad_request');
    const undecodableStream = await openStream(`/api/tracks/${undecodable}/events`);
    expect(undecodableStream.status).toBe(400);
    await stillServes(OPAQUE);
  });

  test('numbers, ids and cursors the database cannot hold are refused before it', async () => {
    const cursor = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const q = (query: string) => api('GET', `${commentsOf(TRACK)}?${query}`);
    // Within float8 and int4: stored.
    expect(
      (await api('POST', commentsOf(TRACK), { content: 'far', timestamp: 1e308 })).status,
    ).toBe(201);
    expect((await q(`cursor=${cursor(['t', 1e308, 2147483647])}`)).status).toBe(200);
    expect(
      (
        await admin('/api/admin/tracks/huge-duration', {
          title: 'T',
          album_id: ALBUM_ID,
          duration_s: 1e308,
        })
      ).status,
    ).toBe(201);
    // Outside them: 4xx, with the contract's body.
    const raw = await httpRequest(`${running.url}${commentsOf(TRACK)}`, 'POST', {
      headers: { Authorization: `Bearer ${tokens.author}`, 'Content-Type': 'application/json' },
      body: '{"content":"x","timestamp":1e999}',
    });
    expectError(raw, 400, 'invalid_input');
    for (const parent of [2147483648, 1.5, -1, 1e308]) {
      expectError(
        await api('POST', commentsOf(TRACK), { content: 'x', parent_id: parent }),
        400,
        'invalid_input',
      );
    }
    for (const id of ['2147483648', '99999999999999999999', '0', '1e3', '%00']) {
      expectError(await api('PATCH', `/api/comments/${id}`, { content: 'x' }), 404, 'not_found');
      expectError(await api('DELETE', `/api/comments/${id}`), 404, 'not_found');
      expectError(
        await admin(`/api/admin/albums/${id}`, { title: 'A', created_by_id: 202 }),
        400,
        'invalid_id',
      );
    }
    expectError(
      await admin('/api/admin/tracks/big-album', { title: 'T', album_id: 2147483648 }),
      400,
      'invalid_input',
    );
    for (const bad of [
      cursor(['c', 0, 2147483648]),
      cursor(['t', 0, 1.5]),
      cursor(['t', Infinity, 1]), // JSON.stringify writes null
      Buffer.from('["t",1e999,1]').toString('base64url'), // parses to Infinity
      cursor(['t', '0', 1]),
      'not-a-cursor',
      '%00',
      'A'.repeat(201),
    ]) {
      const res = await q(`cursor=${bad}`);
      expect(res.status).toBe(400);
      expect((res.json as { error: { code: string } }).error.code).toMatch(
        /^invalid_(cursor|query)$/,
      );
    }
    for (const limit of ['1e3', '99999999999999999999', '-1', '0', '1.5', '%00']) {
      expectError(await q(`limit=${limit}`), 400, 'invalid_query');
    }
    // Last-Event-ID the log cannot hold: a `reset`, never an error.
    for (const id of ['99999999999999999999', '999999999999999', '-1', '1e3']) {
      const stream = await openStream(`/api/tracks/${TRACK}/events`, id);
      expect(stream.status).toBe(200);
      await stream.waitForEvent((e) => e.event === 'reset');
      stream.close();
    }
    await stillServes(TRACK);
  });

  if (kind === 'embedded') {
    // The demo sign-in is served in the embedded mode outside production only.
    test('the demo sign-in refuses user ids PostgreSQL cannot hold', async () => {
      for (const [type, body] of [
        ['application/json', '{"user_id":2147483648}'],
        ['application/x-www-form-urlencoded', 'user_id=9999999999'],
      ] as const) {
        const res = await httpRequest(`${running.url}/api/demo/session`, 'POST', {
          headers: { 'Content-Type': type },
          body,
        });
        expectError(res, 400, 'invalid_input');
      }
      await stillServes(TRACK);
    });
  }
});
