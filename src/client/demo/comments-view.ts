/** The comment list (threads under their top-level comment) and the timeline's markers. */

import type { Comment } from '../../events/catalogue';
import { ApiError } from '../trackcomments-client.js';
import { setReplyTo } from './composer.js';
import { formatTime, make, renderContent, showError, ui } from './dom.js';
import { client, comments, duration, state } from './page-state.js';
import { renderPosition, seek } from './player.js';

interface RenderedItem {
  li: HTMLLIElement;
  /** Everything the item shows: when it changes, the item is rebuilt. */
  key: string;
}

/** id -> item, for keyed updates (re-rendering all would drop an edit in progress). */
const rendered = new Map<number, RenderedItem>();

function canEdit(c: Comment): boolean {
  return !!state.me && c.user.id === state.me.id;
}

function canDelete(c: Comment): boolean {
  if (!state.me) return false;
  return (
    canEdit(c) ||
    state.me.is_team ||
    (!!state.track && state.track.album_creator_id === state.me.id)
  );
}

/** Drops a deleted comment, and the edit or reply that was about it. */
export function forgetComment(id: number): void {
  state.list?.remove(id);
  if (state.editingId === id) state.editingId = null;
  if (state.replyTo && state.replyTo.id === id) setReplyTo(null);
}

function byPosition(a: Comment, b: Comment): number {
  return a.timestamp - b.timestamp || a.created_at.localeCompare(b.created_at) || a.id - b.id;
}

function byCreation(a: Comment, b: Comment): number {
  return a.created_at.localeCompare(b.created_at) || a.id - b.id;
}

/** Top-level comments by position, each followed by its replies (any depth) by creation. */
function orderedComments(): { comment: Comment; reply: boolean }[] {
  const all = comments();
  const rootOf = (c: Comment): Comment => {
    let cur = c;
    const seen = new Set<number>();
    while (cur.parent_id !== null && all.has(cur.parent_id) && !seen.has(cur.id)) {
      seen.add(cur.id);
      cur = all.get(cur.parent_id)!;
    }
    return cur;
  };
  const replies = new Map<number, Comment[]>();
  const roots: Comment[] = [];
  for (const c of all.values()) {
    const root = rootOf(c);
    if (root === c) roots.push(c);
    else {
      const thread = replies.get(root.id) ?? [];
      thread.push(c);
      replies.set(root.id, thread);
    }
  }
  roots.sort(byPosition);
  const out: { comment: Comment; reply: boolean }[] = [];
  for (const r of roots) {
    out.push({ comment: r, reply: false });
    for (const c of (replies.get(r.id) ?? []).sort(byCreation))
      out.push({ comment: c, reply: true });
  }
  return out;
}

function itemKey(c: Comment, reply: boolean): string {
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

function linkButton(testid: string, text: string, className = 'link'): HTMLButtonElement {
  return make('button', { type: 'button', className, testid, text });
}

function buildItem(c: Comment, reply: boolean): HTMLLIElement {
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
  li.append(buildActions(c));
  return li;
}

function buildActions(c: Comment): HTMLSpanElement {
  const actions = make('span', { className: 'actions' });
  if (state.me) {
    const replyBtn = linkButton('comment-reply', 'Reply');
    replyBtn.addEventListener('click', () => setReplyTo(c));
    actions.append(replyBtn);
  }
  if (canEdit(c)) {
    const edit = linkButton('comment-edit', 'Edit');
    edit.addEventListener('click', () => {
      state.editingId = c.id;
      renderComments();
      document
        .querySelector<HTMLInputElement>(
          `[data-comment-id="${c.id}"] [data-testid="comment-edit-input"]`,
        )
        ?.focus();
    });
    actions.append(edit);
  }
  if (canDelete(c)) {
    const del = linkButton('comment-delete', 'Delete', 'link danger');
    del.addEventListener('click', async () => {
      del.disabled = true;
      try {
        await client.deleteComment(c.id);
        forgetComment(c.id);
        renderComments();
      } catch (err) {
        del.disabled = false;
        if (err instanceof ApiError && err.status === 404) {
          forgetComment(c.id);
          renderComments();
        } else showError(err);
      }
    });
    actions.append(del);
  }
  return actions;
}

function buildEditForm(c: Comment): HTMLFormElement {
  const form = make('form', { className: 'edit-form', testid: 'comment-edit-form' });
  const input = make('input', {
    type: 'text',
    testid: 'comment-edit-input',
    maxlength: '2000',
    'aria-label': 'edit comment',
  });
  input.value = c.content;
  const save = make('button', { type: 'submit', testid: 'comment-edit-save', text: 'Save' });
  const cancel = linkButton('comment-edit-cancel', 'Cancel');
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
      state.list?.replace(updated);
      stopEditing();
    } catch (err) {
      save.disabled = false;
      showError(err);
    }
  });
  form.append(input, save, cancel);
  return form;
}

export function renderComments(): void {
  const items = orderedComments();
  const wanted = new Set<number>();
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

function renderMarkers(): void {
  const total = duration();
  const all = comments();
  ui.markers.textContent = '';
  for (const c of all.values()) {
    if (c.parent_id !== null && all.has(c.parent_id)) continue;
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
      document
        .querySelector(`[data-testid="comment"][data-comment-id="${c.id}"]`)
        ?.scrollIntoView({ block: 'nearest' });
    });
    ui.markers.append(marker);
  }
}
