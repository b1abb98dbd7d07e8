// The demo page: a simulated player with live timed comments. Plain ES module, no build step
// beyond the client module; runs under helmet's default CSP (no inline script or handlers).
/* global location, history */
import { ApiError, createClient } from './build/trackcomments-client.js';

const TYPING_THROTTLE_MS = 2000;
const TYPING_IDLE_MS = 3000;
const TOAST_MS = 8000;
const FALLBACK_DURATION_S = 300;

const client = createClient();

const el = (testId) => document.querySelector(`[data-testid="${testId}"]`);
const ui = {
  userSelect: el('user-select'),
  roles: el('me-roles'),
  trackSelect: el('track-select'),
  conn: el('connection-state'),
  play: el('play-button'),
  position: el('position'),
  trackTitle: el('track-title'),
  timeline: el('timeline'),
  progress: el('timeline-progress'),
  markers: el('timeline-markers'),
  replyBanner: el('reply-banner'),
  replyTo: el('reply-to'),
  replyCancel: el('reply-cancel'),
  form: el('comment-form'),
  composePosition: el('compose-position'),
  input: el('comment-input'),
  submit: el('comment-submit'),
  typing: el('typing-indicator'),
  error: el('error'),
  empty: el('comments-empty'),
  list: el('comment-list'),
  toasts: el('toasts'),
};

const state = {
  me: null,
  users: [],
  tracks: [],
  track: null,
  /** id -> Comment; the single source for the list and the markers (so nothing shows twice). */
  comments: new Map(),
  /** Ids deleted while the page was open: a late or replayed copy must not bring them back. */
  deleted: new Set(),
  /** While a REST (re)load runs, stream events wait here and are applied after the snapshot. */
  loading: false,
  pending: [],
  loadSeq: 0,
  /** Bumped on every track switch / sign-in, so stale async results are dropped. */
  generation: 0,
  trackSub: null,
  meSub: null,
  resetThisConnection: false,
  position: 0,
  playing: false,
  lastFrame: 0,
  editingId: null,
  replyTo: null,
  typists: new Map(),
  typingActive: false,
  typingSentAt: 0,
  typingIdleTimer: null,
};

/** id -> { li, comment, key } for keyed updates (re-rendering would drop an edit in progress). */
const rendered = new Map();

// ---------------------------------------------------------------------------
// Formatting

function formatTime(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function duration() {
  if (state.track && typeof state.track.duration_s === 'number' && state.track.duration_s > 0) {
    return state.track.duration_s;
  }
  let max = 0;
  for (const c of state.comments.values()) max = Math.max(max, c.timestamp);
  return Math.max(FALLBACK_DURATION_S, Math.ceil(max + 30));
}

/** Content as text nodes, @mentions highlighted; never innerHTML. */
function renderContent(target, text) {
  target.textContent = '';
  const re = /@[A-Za-z0-9_]{1,32}/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) target.append(text.slice(last, m.index));
    const span = document.createElement('span');
    span.className = 'mention';
    span.textContent = m[0];
    target.append(span);
    last = m.index + m[0].length;
  }
  if (last < text.length) target.append(text.slice(last));
}

function make(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'testid') node.dataset.testid = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'className') node.className = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

// ---------------------------------------------------------------------------
// Errors, toasts, connection state

let errorTimer = null;
function showError(err) {
  const msg =
    err instanceof ApiError
      ? `${err.message} (${err.code})`
      : err instanceof Error
        ? err.message
        : String(err);
  ui.error.textContent = msg;
  ui.error.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => (ui.error.hidden = true), 6000);
}

function toast(text, onClick) {
  const node = make('div', { className: 'toast', testid: 'toast', role: 'status', text });
  if (onClick) {
    node.classList.add('clickable');
    node.addEventListener('click', () => {
      onClick();
      node.remove();
    });
  }
  ui.toasts.append(node);
  setTimeout(() => node.remove(), TOAST_MS);
}

function setConnection(text, dataState) {
  ui.conn.textContent = text;
  ui.conn.dataset.state = dataState;
}

const STATE_TEXT = {
  connecting: 'connecting',
  live: 'live',
  reconnecting: 'reconnecting',
  closed: 'offline',
};

// ---------------------------------------------------------------------------
// Comments: state changes

function applyEvent(kind, data) {
  if (state.loading) {
    state.pending.push([kind, data]);
    return;
  }
  if (kind === 'new_comment') {
    addComment(data.comment);
    clearTypist(data.comment.user.id);
  } else if (kind === 'comment_edited') {
    const existing = state.comments.get(data.comment_id);
    if (existing) {
      state.comments.set(data.comment_id, {
        ...existing,
        content: data.content,
        timestamp: data.timestamp,
        is_edited: true,
        last_edited_at: data.last_edited_at,
      });
    }
  } else if (kind === 'comment_deleted') {
    removeComment(data.comment_id);
  }
  renderComments();
}

/** Adds a comment unless it is known already (stream and POST both deliver it) or deleted. */
function addComment(comment) {
  if (!state.track || comment.track_id !== state.track.id) return;
  if (state.deleted.has(comment.id) || state.comments.has(comment.id)) return;
  state.comments.set(comment.id, comment);
}

function removeComment(id) {
  state.deleted.add(id);
  state.comments.delete(id);
  if (state.editingId === id) state.editingId = null;
  if (state.replyTo && state.replyTo.id === id) setReplyTo(null);
}

/**
 * Replaces the comments with a REST snapshot, then applies the stream events that arrived
 * meanwhile. A newer load (a reset during the first load, a track switch) supersedes an
 * older one, whose result and queue are then left to it.
 */
async function reloadComments() {
  const track = state.track;
  const generation = state.generation;
  const seq = ++state.loadSeq;
  const current = () => generation === state.generation && seq === state.loadSeq;
  if (!track || !state.me) return false;
  state.loading = true;
  state.pending = [];
  try {
    const comments = await client.listAllComments(track.id, { order: 'timestamp' });
    if (!current()) return false;
    state.comments = new Map();
    for (const c of comments) if (!state.deleted.has(c.id)) state.comments.set(c.id, c);
    return true;
  } catch (err) {
    if (current()) showError(err);
    return false;
  } finally {
    if (current()) {
      state.loading = false;
      const queued = state.pending;
      state.pending = [];
      for (const [kind, data] of queued) applyEvent(kind, data);
      renderComments();
    }
  }
}

// ---------------------------------------------------------------------------
// Comments: rendering

function canEdit(c) {
  return !!state.me && c.user.id === state.me.id;
}

function canDelete(c) {
  if (!state.me) return false;
  return (
    canEdit(c) ||
    state.me.is_team ||
    (!!state.track && state.track.album_creator_id === state.me.id)
  );
}

function byPosition(a, b) {
  return a.timestamp - b.timestamp || a.created_at.localeCompare(b.created_at) || a.id - b.id;
}

function byCreation(a, b) {
  return a.created_at.localeCompare(b.created_at) || a.id - b.id;
}

/** Top-level comments by position, each followed by its replies (any depth) by creation. */
function orderedComments() {
  const all = [...state.comments.values()];
  const rootOf = (c) => {
    let cur = c;
    const seen = new Set();
    while (cur.parent_id !== null && state.comments.has(cur.parent_id) && !seen.has(cur.id)) {
      seen.add(cur.id);
      cur = state.comments.get(cur.parent_id);
    }
    return cur;
  };
  const replies = new Map();
  const roots = [];
  for (const c of all) {
    const root = rootOf(c);
    if (root === c) roots.push(c);
    else {
      if (!replies.has(root.id)) replies.set(root.id, []);
      replies.get(root.id).push(c);
    }
  }
  roots.sort(byPosition);
  const out = [];
  for (const r of roots) {
    out.push({ comment: r, reply: false });
    for (const c of (replies.get(r.id) ?? []).sort(byCreation))
      out.push({ comment: c, reply: true });
  }
  return out;
}

function itemKey(c, reply) {
  return [
    c.content,
    c.timestamp,
    c.is_edited,
    reply,
    canEdit(c),
    canDelete(c),
    state.editingId === c.id,
  ].join('\u0000');
}

function buildItem(c, reply) {
  const li = make('li', { className: 'comment', testid: 'comment' });
  li.dataset.commentId = String(c.id);
  li.classList.toggle('reply', reply);
  li.classList.toggle('mine', canEdit(c));

  const ts = make('button', {
    type: 'button',
    className: 'ts',
    testid: 'comment-timestamp',
    text: formatTime(c.timestamp),
    title: 'play from here',
  });
  ts.addEventListener('click', () => seek(c.timestamp));
  const author = make('span', {
    className: 'author',
    testid: 'comment-author',
    text: c.user.username,
  });
  li.append(ts, author);

  if (state.editingId === c.id) {
    li.append(buildEditForm(c));
    return li;
  }

  const content = make('span', { className: 'content', testid: 'comment-content' });
  renderContent(content, c.content);
  li.append(content);
  if (c.is_edited)
    li.append(make('span', { className: 'edited', testid: 'comment-edited', text: '(edited)' }));

  const actions = make('span', { className: 'actions' });
  if (state.me) {
    const replyBtn = make('button', {
      type: 'button',
      className: 'link',
      testid: 'comment-reply',
      text: 'Reply',
    });
    replyBtn.addEventListener('click', () => setReplyTo(c));
    actions.append(replyBtn);
  }
  if (canEdit(c)) {
    const edit = make('button', {
      type: 'button',
      className: 'link',
      testid: 'comment-edit',
      text: 'Edit',
    });
    edit.addEventListener('click', () => {
      state.editingId = c.id;
      renderComments();
      document
        .querySelector(`[data-comment-id="${c.id}"] [data-testid="comment-edit-input"]`)
        ?.focus();
    });
    actions.append(edit);
  }
  if (canDelete(c)) {
    const del = make('button', {
      type: 'button',
      className: 'link danger',
      testid: 'comment-delete',
      text: 'Delete',
    });
    del.addEventListener('click', async () => {
      del.disabled = true;
      try {
        await client.deleteComment(c.id);
        removeComment(c.id);
        renderComments();
      } catch (err) {
        del.disabled = false;
        if (err instanceof ApiError && err.status === 404) {
          removeComment(c.id);
          renderComments();
        } else showError(err);
      }
    });
    actions.append(del);
  }
  li.append(actions);
  return li;
}

function buildEditForm(c) {
  const form = make('form', { className: 'edit-form', testid: 'comment-edit-form' });
  const input = make('input', {
    type: 'text',
    testid: 'comment-edit-input',
    maxlength: '2000',
    'aria-label': 'edit comment',
  });
  input.value = c.content;
  const save = make('button', { type: 'submit', testid: 'comment-edit-save', text: 'Save' });
  const cancel = make('button', {
    type: 'button',
    className: 'link',
    testid: 'comment-edit-cancel',
    text: 'Cancel',
  });
  const stopEditing = () => {
    state.editingId = null;
    renderComments();
  };
  cancel.addEventListener('click', stopEditing);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') stopEditing();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const content = input.value.trim();
    if (!content) return;
    save.disabled = true;
    try {
      const updated = await client.editComment(c.id, content);
      if (state.comments.has(updated.id)) state.comments.set(updated.id, updated);
      stopEditing();
    } catch (err) {
      save.disabled = false;
      showError(err);
    }
  });
  form.append(input, save, cancel);
  return form;
}

function renderComments() {
  const items = orderedComments();
  const wanted = new Set();
  items.forEach(({ comment: c, reply }, index) => {
    wanted.add(c.id);
    const key = itemKey(c, reply);
    let entry = rendered.get(c.id);
    if (!entry || entry.key !== key) {
      const li = buildItem(c, reply);
      if (entry) entry.li.replaceWith(li);
      entry = { li, key };
      rendered.set(c.id, entry);
    }
    // Move only what is out of place, so a focused edit field is not detached needlessly.
    const current = ui.list.children[index];
    if (current !== entry.li) ui.list.insertBefore(entry.li, current ?? null);
  });
  for (const [id, entry] of rendered) {
    if (!wanted.has(id)) {
      entry.li.remove();
      rendered.delete(id);
    }
  }
  ui.empty.hidden = items.length > 0 || !state.track;
  ui.empty.textContent = state.me ? 'No comments yet.' : 'Sign in to see and write comments.';
  renderMarkers();
  renderPosition();
}

function renderMarkers() {
  const total = duration();
  ui.markers.textContent = '';
  for (const c of state.comments.values()) {
    if (c.parent_id !== null && state.comments.has(c.parent_id)) continue;
    const marker = make('button', {
      type: 'button',
      className: 'marker',
      testid: 'timeline-marker',
      title: `${formatTime(c.timestamp)} ${c.user.username}: ${c.content.slice(0, 80)}`,
    });
    marker.dataset.commentId = String(c.id);
    marker.style.left = `${Math.min(100, (c.timestamp / total) * 100)}%`;
    marker.classList.toggle('passed', c.timestamp <= state.position);
    marker.addEventListener('click', (e) => {
      e.stopPropagation();
      seek(c.timestamp);
      document.querySelector(`[data-testid="comment"][data-comment-id="${c.id}"]`)?.scrollIntoView({
        block: 'nearest',
      });
    });
    ui.markers.append(marker);
  }
}

// ---------------------------------------------------------------------------
// Simulated player

function renderPosition() {
  const total = duration();
  ui.position.textContent = `${formatTime(state.position)} / ${formatTime(total)}`;
  ui.composePosition.textContent = `at ${formatTime(state.replyTo ? state.replyTo.timestamp : state.position)}`;
  ui.progress.style.width = `${Math.min(100, (state.position / total) * 100)}%`;
  ui.timeline.setAttribute('aria-valuemax', String(Math.round(total)));
  ui.timeline.setAttribute('aria-valuenow', String(Math.floor(state.position)));
  ui.timeline.setAttribute('aria-valuetext', formatTime(state.position));
  for (const m of ui.markers.children) {
    const c = state.comments.get(Number(m.dataset.commentId));
    if (c) m.classList.toggle('passed', c.timestamp <= state.position);
  }
}

function seek(seconds) {
  state.position = Math.min(duration(), Math.max(0, seconds));
  renderPosition();
}

function setPlaying(playing) {
  state.playing = playing && !!state.track;
  ui.play.textContent = state.playing ? 'Pause' : 'Play';
  ui.play.dataset.playing = String(state.playing);
  if (state.playing) {
    if (state.position >= duration()) state.position = 0;
    state.lastFrame = performance.now();
    requestAnimationFrame(frame);
  }
}

function frame(now) {
  if (!state.playing) return;
  state.position += (now - state.lastFrame) / 1000;
  state.lastFrame = now;
  if (state.position >= duration()) {
    state.position = duration();
    setPlaying(false);
  }
  renderPosition();
  if (state.playing) requestAnimationFrame(frame);
}

ui.play.addEventListener('click', () => setPlaying(!state.playing));
ui.timeline.addEventListener('click', (e) => {
  const rect = ui.timeline.getBoundingClientRect();
  if (rect.width > 0) seek(((e.clientX - rect.left) / rect.width) * duration());
});
ui.timeline.addEventListener('keydown', (e) => {
  const step = { ArrowRight: 5, ArrowLeft: -5, PageUp: 30, PageDown: -30 }[e.key];
  if (step !== undefined) {
    e.preventDefault();
    seek(state.position + step);
  } else if (e.key === 'Home') seek(0);
  else if (e.key === 'End') seek(duration());
  else if (e.key === ' ') {
    e.preventDefault();
    setPlaying(!state.playing);
  }
});

// ---------------------------------------------------------------------------
// Composer and typing

function setReplyTo(comment) {
  state.replyTo = comment;
  ui.replyBanner.hidden = !comment;
  ui.replyTo.textContent = comment
    ? `${comment.user.username} at ${formatTime(comment.timestamp)}`
    : '';
  if (comment) ui.input.focus();
  renderPosition();
}
ui.replyCancel.addEventListener('click', () => setReplyTo(null));

function sendTyping(isTyping) {
  if (!state.track || !state.me) return;
  // A 429 or a dropped request only costs an indicator for a moment elsewhere.
  client.setTyping(state.track.id, isTyping).catch(() => {});
}

function noteTyping() {
  if (!ui.input.value.trim()) {
    stopTyping();
    return;
  }
  const now = Date.now();
  if (!state.typingActive || now - state.typingSentAt >= TYPING_THROTTLE_MS) {
    state.typingActive = true;
    state.typingSentAt = now;
    sendTyping(true);
  }
  clearTimeout(state.typingIdleTimer);
  state.typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(state.typingIdleTimer);
  state.typingIdleTimer = null;
  if (!state.typingActive) return;
  state.typingActive = false;
  sendTyping(false);
}

ui.input.addEventListener('input', noteTyping);
ui.input.addEventListener('blur', stopTyping);
ui.input.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && state.replyTo) setReplyTo(null);
});

ui.form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const content = ui.input.value.trim();
  if (!content || !state.track) return;
  stopTyping();
  const track = state.track;
  const replyTo = state.replyTo;
  const position = replyTo ? replyTo.timestamp : state.position;
  const timestamp = Math.min(duration(), Math.round(position * 10) / 10);
  ui.submit.disabled = true;
  try {
    const comment = await client.postComment(track.id, {
      content,
      timestamp,
      parent_id: replyTo ? replyTo.id : null,
    });
    ui.input.value = '';
    setReplyTo(null);
    if (state.track === track && !state.loading) {
      addComment(comment);
      renderComments();
    }
  } catch (err) {
    showError(err);
  } finally {
    ui.submit.disabled = !state.me || !state.track;
  }
});

function setTypist(data) {
  if (state.me && data.user_id === state.me.id) return;
  const existing = state.typists.get(data.user_id);
  if (existing) clearTimeout(existing.timer);
  if (!data.is_typing) {
    state.typists.delete(data.user_id);
  } else {
    const timer = setTimeout(() => clearTypist(data.user_id), Math.max(0, data.expires_in_ms));
    state.typists.set(data.user_id, { username: data.username, timer });
  }
  renderTyping();
}

function clearTypist(userId) {
  const entry = state.typists.get(userId);
  if (!entry) return;
  clearTimeout(entry.timer);
  state.typists.delete(userId);
  renderTyping();
}

function renderTyping() {
  const names = [...state.typists.values()].map((t) => t.username);
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2)
    text = `${names[0]}, ${names[1]} and ${names.length - 2} more are typing…`;
  ui.typing.textContent = text;
  ui.typing.hidden = !text;
}

function clearTypists() {
  for (const t of state.typists.values()) clearTimeout(t.timer);
  state.typists.clear();
  renderTyping();
}

// ---------------------------------------------------------------------------
// Streams

function openTrackStream() {
  state.trackSub?.close();
  state.trackSub = null;
  state.loadSeq++;
  state.loading = false;
  state.pending = [];
  if (!state.track || !state.me) {
    setConnection('offline', 'closed');
    return;
  }
  const generation = state.generation;
  let loadedOnce = false;
  state.resetThisConnection = false;
  // The snapshot is taken after `connected`, and events are queued until it is in:
  // nothing committed between the two can be missed.
  state.loading = true;
  state.pending = [];
  const track = state.track;
  state.trackSub = client.subscribeTrack(
    track.id,
    {
      state(s) {
        if (generation !== state.generation) return;
        if (s === 'reconnecting') {
          state.resetThisConnection = false;
          clearTypists();
        }
        setConnection(STATE_TEXT[s], s);
      },
      connected() {
        if (generation !== state.generation) return;
        // First connect: take the snapshot. A reconnect with no event id yet cannot be
        // resumed (the server would only send live events), so the snapshot is retaken.
        if (!loadedOnce || state.trackSub?.lastEventId == null) reloadComments();
        loadedOnce = true;
      },
      caught_up({ replayed }) {
        if (generation !== state.generation || state.resetThisConnection) return;
        if (replayed > 0) setConnection('caught up', 'caught-up');
      },
      async reset() {
        if (generation !== state.generation) return;
        state.resetThisConnection = true;
        setConnection('reloading', 'reloading');
        const ok = await reloadComments();
        if (ok && generation === state.generation) setConnection('reset and reloaded', 'reset');
      },
      new_comment: (data) => applyEvent('new_comment', data),
      comment_edited: (data) => applyEvent('comment_edited', data),
      comment_deleted: (data) => applyEvent('comment_deleted', data),
      user_typing: (data) => setTypist(data),
      error(e) {
        if (e.fatal) showError(new Error(`live updates stopped: ${e.message}`));
      },
    },
    { maxRetryMs: 10000 },
  );
}

function openMeStream() {
  state.meSub?.close();
  state.meSub = null;
  if (!state.me) return;
  state.meSub = client.subscribeMe({
    mention(data) {
      // A replayed mention of a comment deleted since carries no content: nothing to show.
      if (data.comment.content === '') return;
      const track = state.tracks.find((t) => t.id === data.track_id);
      const elsewhere = track && track !== state.track;
      const snippet =
        data.comment.content.length > 80
          ? `${data.comment.content.slice(0, 79)}…`
          : data.comment.content;
      // The album's creator hears of every comment; only an @name is a mention of them.
      const named = (data.comment.mentions ?? []).some((m) => state.me && m.id === state.me.id);
      const what = named
        ? `mentioned you${elsewhere ? ` on “${track.title}”` : ''}`
        : `commented on ${elsewhere ? `“${track.title}”` : 'your track'}`;
      toast(`@${data.from_user.username} ${what}: ${snippet}`, () => {
        if (track && track !== state.track)
          selectTrack(track.id).then(() => seek(data.comment.timestamp));
        else seek(data.comment.timestamp);
      });
    },
  });
}

// ---------------------------------------------------------------------------
// Users and tracks

function renderMe() {
  ui.userSelect.value = state.me ? String(state.me.id) : '';
  const roles = [];
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

async function selectTrack(trackId) {
  const track = state.tracks.find((t) => t.id === trackId) ?? null;
  state.generation++;
  state.track = track;
  state.comments = new Map();
  state.deleted = new Set();
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

async function signIn(userId) {
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

ui.userSelect.addEventListener('change', () => signIn(Number(ui.userSelect.value) || null));
ui.trackSelect.addEventListener('change', () => selectTrack(ui.trackSelect.value));

async function init() {
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

init();
