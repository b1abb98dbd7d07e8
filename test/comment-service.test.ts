import { CommentService } from '../src/domain/comment-service';
import { DomainError } from '../src/domain/errors';
import { MAX_MENTIONED_USERS } from '../src/domain/mentions';
import type { TrackContext, User } from '../src/domain/types';
import type { StoredEvent } from '../src/events/types';
import { InMemoryCatalog, InMemoryComments } from './support/in-memory-repositories';

/** CommentService's rules against in-memory repositories: no HTTP, no PostgreSQL. */

const user = (id: number, username: string, roles: Partial<User> = {}): User => ({
  id,
  username,
  is_creator: false,
  is_team: false,
  ...roles,
});

function setup() {
  const catalog = new InMemoryCatalog();
  const creator = catalog.addUser(user(1, 'creator', { is_creator: true }));
  const alice = catalog.addUser(user(2, 'alice'));
  const bob = catalog.addUser(user(3, 'bob'));
  const staff = catalog.addUser(user(4, 'staff', { is_team: true }));
  const carol = catalog.addUser(user(5, 'carol'));
  const track: TrackContext = catalog.addTrack({
    id: 't1',
    title: 'Night drive',
    album_id: 10,
    duration_s: 180,
    album_title: 'Album',
    album_creator_id: creator.id,
  });
  catalog.addTrack({ ...track, id: 't2', duration_s: null });
  const repo = new InMemoryComments(catalog);
  const committed: StoredEvent[][] = [];
  const service = new CommentService(catalog, repo, (events) => committed.push(events));
  return { service, catalog, repo, committed, creator, alice, bob, staff, carol };
}

/** The DomainError code a promise rejects with. */
async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof DomainError)) throw new Error(`expected a DomainError, got ${String(err)}`);
  return err.code;
}

describe('CommentService.create', () => {
  it('stores the comment and emits new_comment plus a mention to each named user and the album creator, never the author', async () => {
    const { service, repo, committed, alice, bob } = setup();
    const comment = await service.create(alice, 't1', {
      content: 'hey @bob and @alice, @nobody',
      timestamp: 12.5,
      parentId: null,
    });
    expect(comment).toMatchObject({
      id: 1,
      track_id: 't1',
      user: { id: alice.id, username: 'alice' },
      timestamp: 12.5,
      mentions: [
        { id: alice.id, username: 'alice' },
        { id: bob.id, username: 'bob' },
      ],
    });
    expect(committed).toHaveLength(1);
    const events = committed[0]!;
    expect(events.map((e) => [e.stream, e.type, e.seq])).toEqual([
      ['track:t1', 'new_comment', 1],
      ['user:3', 'mention', 1],
      ['user:1', 'mention', 1],
    ]);
    // The id, known only once stored, is in every event's comment.
    for (const e of events) expect((e.data as { comment: { id: number } }).comment.id).toBe(1);
    // A mention lists only its recipient among the named; the creator was not named.
    expect(events[1]!.data).toMatchObject({ comment: { mentions: [{ id: bob.id }] } });
    expect(events[2]!.data).toMatchObject({ comment: { mentions: [] } });
    expect(repo.eventsOf('track:t1')).toEqual([events[0]]);
  });

  it('refuses a timestamp past the track, an unknown track and a parent on another track, storing nothing', async () => {
    const { service, repo, committed, alice } = setup();
    const input = { content: 'x', timestamp: 0, parentId: null };
    expect(await codeOf(service.create(alice, 't1', { ...input, timestamp: 181 }))).toBe(
      'invalid_timestamp',
    );
    expect(await codeOf(service.create(alice, 'nope', input))).toBe('not_found');
    const other = await service.create(alice, 't2', input);
    expect(await codeOf(service.create(alice, 't1', { ...input, parentId: other.id }))).toBe(
      'invalid_parent',
    );
    expect(await codeOf(service.create(alice, 't1', { ...input, parentId: 999 }))).toBe(
      'invalid_parent',
    );
    expect(repo.comments.size).toBe(1);
    expect(committed).toHaveLength(1);
    // A track without a duration takes any timestamp; a reply on the same track is fine.
    await service.create(alice, 't2', { content: 'late', timestamp: 1e6, parentId: other.id });
  });

  it(`refuses a comment naming more than ${MAX_MENTIONED_USERS} existing users`, async () => {
    const { service, catalog, alice } = setup();
    const names: string[] = [];
    for (let i = 0; i <= MAX_MENTIONED_USERS; i++) {
      catalog.addUser(user(100 + i, `u${i}`));
      names.push(`@u${i}`);
    }
    const content = names.join(' ');
    expect(
      await codeOf(service.create(alice, 't1', { content, timestamp: 0, parentId: null })),
    ).toBe('too_many_mentions');
    const fewer = names.slice(1).join(' ') + ' @ghost';
    const ok = await service.create(alice, 't1', { content: fewer, timestamp: 0, parentId: null });
    expect(ok.mentions).toHaveLength(MAX_MENTIONED_USERS);
  });
});

describe('CommentService.list', () => {
  it('pages with a cursor for its own order, refusing a cursor of the other order', async () => {
    const { service, alice } = setup();
    for (const ts of [30, 10, 20]) {
      await service.create(alice, 't1', { content: `at ${ts}`, timestamp: ts, parentId: null });
    }
    const first = await service.list('t1', { order: 'timestamp', limit: 2, cursor: null });
    expect(first.comments.map((c) => c.timestamp)).toEqual([10, 20]);
    expect(first.next).toEqual({ order: 'timestamp', timestamp: 20, id: 3 });
    const second = await service.list('t1', { order: 'timestamp', limit: 2, cursor: first.next });
    expect(second.comments.map((c) => c.timestamp)).toEqual([30]);
    expect(second.next).toBeNull();
    expect(
      await codeOf(service.list('t1', { order: 'created', limit: 2, cursor: first.next })),
    ).toBe('invalid_cursor');
    expect(await codeOf(service.list('nope', { order: 'created', limit: 2, cursor: null }))).toBe(
      'not_found',
    );
  });
});

describe('CommentService.edit', () => {
  it('lets only the author edit; mentions go to users newly named, and earlier events show the new text', async () => {
    const { service, repo, committed, alice, bob, carol, creator } = setup();
    const c = await service.create(alice, 't1', {
      content: 'hi @bob',
      timestamp: 1,
      parentId: null,
    });
    expect(await codeOf(service.edit(bob, c.id, 'mine now'))).toBe('forbidden');
    expect(await codeOf(service.edit(creator, c.id, 'mine now'))).toBe('forbidden');
    expect(await codeOf(service.edit(alice, 999, 'x'))).toBe('not_found');

    const edited = await service.edit(alice, c.id, 'hi @bob and @carol and @alice');
    expect(edited).toMatchObject({ content: 'hi @bob and @carol and @alice', is_edited: true });
    const events = committed.at(-1)!;
    expect(events.map((e) => [e.stream, e.type])).toEqual([
      ['track:t1', 'comment_edited'],
      [`user:${carol.id}`, 'mention'],
    ]);
    expect(events[0]!.data).toMatchObject({ comment_id: c.id, content: edited.content });
    // The stored new_comment now carries the edited content (no replay serves the old text).
    expect(repo.eventsOf('track:t1')[0]!.data).toMatchObject({
      comment: { content: edited.content },
    });
  });
});

describe('CommentService.delete', () => {
  it('lets the author, the album creator or the team delete, with every reply; others are refused', async () => {
    const { service, repo, committed, alice, bob, staff, creator } = setup();
    const make = (author: User, parentId: number | null = null) =>
      service.create(author, 't1', { content: 'secret @bob', timestamp: 0, parentId });

    const root = await make(alice);
    const reply = await make(bob, root.id);
    const nested = await make(alice, reply.id);
    expect(await codeOf(service.delete(bob, root.id))).toBe('forbidden');
    expect(repo.comments.size).toBe(3);

    await service.delete(alice, root.id);
    expect(repo.comments.size).toBe(0);
    const deleted = committed.at(-1)!;
    expect(deleted.map((e) => [e.type, (e.data as { comment_id: number }).comment_id])).toEqual([
      ['comment_deleted', root.id],
      ['comment_deleted', reply.id],
      ['comment_deleted', nested.id],
    ]);
    // Deleted means gone: the stored events no longer carry the text.
    const stored = repo.eventsOf('track:t1').filter((e) => e.type === 'new_comment');
    expect(stored.map((e) => (e.data as { comment: { content: string } }).comment.content)).toEqual(
      ['', '', ''],
    );
    expect(await codeOf(service.delete(alice, root.id))).toBe('not_found');

    for (const actor of [creator, staff]) {
      const c = await make(bob);
      await service.delete(actor, c.id);
      expect(repo.comments.has(c.id)).toBe(false);
    }
  });
});

describe('CommentService.typing', () => {
  it('builds the user_typing event for the track stream, and refuses an unknown track', async () => {
    const { service, committed, alice } = setup();
    expect(await service.typing(alice, 't1', true, 5000)).toEqual({
      stream: 'track:t1',
      data: {
        type: 'user_typing',
        track_id: 't1',
        user_id: alice.id,
        username: 'alice',
        is_typing: true,
        expires_in_ms: 5000,
      },
    });
    expect(await codeOf(service.typing(alice, 'nope', false, 5000))).toBe('not_found');
    expect(committed).toHaveLength(0); // never stored
  });
});
