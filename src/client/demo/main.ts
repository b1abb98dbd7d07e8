/**
 * The demo page: a simulated player with live timed comments, built on the typed client and
 * its live list (src/client). Loaded as an ES module by public/index.html; runs under helmet's
 * default CSP (no inline script or handlers).
 */

import { openLiveList, type LiveListStatus } from '../live-list.js';
import { ApiError } from '../trackcomments-client.js';
import { forgetComment, renderComments } from './comments-view.js';
import { installComposer, setReplyTo, stopTyping } from './composer.js';
import { formatTime, make, showError, toast, ui } from './dom.js';
import { client, state } from './page-state.js';
import { installPlayer, seek, setPlaying } from './player.js';
import { clearTypist, clearTypists, setTypist } from './typists.js';

/** The connection indicator's text for each status (its `data-state` is the status itself). */
const STATUS_TEXT: Record<LiveListStatus, string> = {
  connecting: 'connecting',
  live: 'live',
  reconnecting: 'reconnecting',
  closed: 'offline',
  'caught-up': 'caught up',
  reloading: 'reloading',
  reset: 'reset and reloaded',
};

function setConnection(status: LiveListStatus): void {
  ui.conn.textContent = STATUS_TEXT[status];
  ui.conn.dataset.state = status;
}

function openTrackStream(): void {
  state.list?.close();
  state.list = null;
  if (!state.track || !state.me) {
    setConnection('closed');
    return;
  }
  state.list = openLiveList(
    client,
    state.track.id,
    {
      change: renderComments,
      applied(event) {
        if (event.type === 'new_comment') clearTypist(event.comment.user.id);
        else if (event.type === 'comment_deleted') forgetComment(event.comment_id);
      },
      status(status) {
        // Typing events are not replayed: whoever typed before the drop is stale.
        if (status === 'reconnecting') clearTypists();
        setConnection(status);
      },
      user_typing: setTypist,
      loadFailed: showError,
      streamError(e) {
        if (e.fatal) showError(new Error(`live updates stopped: ${e.message}`));
      },
    },
    // Tabs on the same track share its stream, as they share the personal one.
    { maxRetryMs: 10000, sharedAs: state.me.id },
  );
}

function openMeStream(): void {
  state.meSub?.close();
  state.meSub = null;
  if (!state.me) return;
  const me = state.me;
  state.meSub = client.subscribeMe(
    {
      mention(data) {
        // A replayed mention of a comment deleted since carries no content: nothing to show.
        if (data.comment.content === '') return;
        const track = state.tracks.find((t) => t.id === data.track_id);
        const elsewhere = !!track && track !== state.track;
        const snippet =
          data.comment.content.length > 80
            ? `${data.comment.content.slice(0, 79)}…`
            : data.comment.content;
        // The album's creator hears of every comment; only an @name is a mention of them.
        const named = (data.comment.mentions ?? []).some((m) => m.id === me.id);
        const what = named
          ? `mentioned you${elsewhere ? ` on “${track.title}”` : ''}`
          : `commented on ${elsewhere ? `“${track.title}”` : 'your track'}`;
        toast(`@${data.from_user.username} ${what}: ${snippet}`, () => {
          // Where the page is when the toast is clicked, not when it popped up.
          if (track && track !== state.track)
            void selectTrack(track.id).then(() => seek(data.comment.timestamp));
          else seek(data.comment.timestamp);
        });
      },
    },
    { sharedAs: me.id },
  );
}

function renderMe(): void {
  ui.userSelect.value = state.me ? String(state.me.id) : '';
  const roles: string[] = [];
  if (state.me?.is_team) roles.push('team');
  if (state.me && state.track && state.track.album_creator_id === state.me.id)
    roles.push('album creator');
  else if (state.me?.is_creator) roles.push('creator');
  ui.roles.textContent = roles.length ? roles.join(', ') : '';
  const canWrite = !!state.me && !!state.track;
  ui.input.disabled = !canWrite;
  ui.submit.disabled = !canWrite;
  ui.input.placeholder = !state.me
    ? 'Sign in to comment'
    : 'Comment at the current position… (Enter to post)';
}

async function selectTrack(trackId: string): Promise<void> {
  const track = state.tracks.find((t) => t.id === trackId) ?? null;
  state.track = track;
  // The old list goes with its stream and its pending snapshot: nothing of it shows any more.
  state.list?.close();
  state.list = null;
  state.editingId = null;
  state.position = 0;
  setReplyTo(null);
  setPlaying(false);
  stopTyping();
  clearTypists();
  ui.trackSelect.value = track ? track.id : '';
  ui.trackTitle.textContent = track ? `${track.title} — ${track.album_title}` : '';
  if (track) history.replaceState(null, '', `#track=${encodeURIComponent(track.id)}`);
  renderMe();
  renderComments();
  openTrackStream();
}

async function signIn(userId: number | null): Promise<void> {
  try {
    state.me = userId ? await client.demo.signIn(userId) : null;
    if (!userId) await client.demo.signOut();
  } catch (err) {
    showError(err);
  }
  openMeStream();
  // The stream authenticated with the old cookie: reopen it as the new user.
  await selectTrack(state.track ? state.track.id : (state.tracks[0]?.id ?? ''));
}

async function init(): Promise<void> {
  installPlayer();
  installComposer();
  ui.userSelect.addEventListener('change', () => void signIn(Number(ui.userSelect.value) || null));
  ui.trackSelect.addEventListener('change', () => void selectTrack(ui.trackSelect.value));
  try {
    [state.users, state.tracks] = await Promise.all([client.demo.users(), client.demo.tracks()]);
  } catch (err) {
    showError(err);
    return;
  }
  for (const u of state.users) {
    const label = u.is_team
      ? `${u.username} (team)`
      : u.is_creator
        ? `${u.username} (creator)`
        : u.username;
    ui.userSelect.append(make('option', { value: String(u.id), text: label }));
  }
  for (const t of state.tracks) {
    const len = typeof t.duration_s === 'number' ? ` (${formatTime(t.duration_s)})` : '';
    ui.trackSelect.append(
      make('option', { value: t.id, text: `${t.title} — ${t.album_title}${len}` }),
    );
  }
  try {
    state.me = await client.demo.me();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showError(err);
    state.me = null;
  }
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('track');
  const initial = state.tracks.find((t) => t.id === fromHash) ?? state.tracks[0];
  openMeStream();
  await selectTrack(initial ? initial.id : '');
}

void init();
