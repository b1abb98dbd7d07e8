/** Writing a comment (or a reply) at the player's position, and telling others we type. */

import type { Comment } from '../../events/catalogue';
import { renderComments } from './comments-view.js';
import { formatTime, showError, ui } from './dom.js';
import { client, duration, state } from './page-state.js';
import { renderPosition } from './player.js';

const TYPING_THROTTLE_MS = 2000;
const TYPING_IDLE_MS = 3000;

export function setReplyTo(comment: Comment | null): void {
  state.replyTo = comment;
  ui.replyBanner.hidden = !comment;
  ui.replyTo.textContent = comment
    ? `${comment.user.username} at ${formatTime(comment.timestamp)}`
    : '';
  if (comment) ui.input.focus();
  renderPosition();
}

function sendTyping(isTyping: boolean): void {
  if (!state.track || !state.me) return;
  // A 429 or a dropped request only costs an indicator for a moment elsewhere.
  client.setTyping(state.track.id, isTyping).catch(() => {});
}

function noteTyping(): void {
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
  if (state.typingIdleTimer) clearTimeout(state.typingIdleTimer);
  state.typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

export function stopTyping(): void {
  if (state.typingIdleTimer) clearTimeout(state.typingIdleTimer);
  state.typingIdleTimer = null;
  if (!state.typingActive) return;
  state.typingActive = false;
  sendTyping(false);
}

async function submit(e: SubmitEvent): Promise<void> {
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
    // The stream delivers it too; whichever comes first shows it, once.
    if (state.track === track && state.list?.add(comment)) renderComments();
  } catch (err) {
    showError(err);
  } finally {
    ui.submit.disabled = !state.me || !state.track;
  }
}

export function installComposer(): void {
  ui.replyCancel.addEventListener('click', () => setReplyTo(null));
  ui.input.addEventListener('input', noteTyping);
  ui.input.addEventListener('blur', stopTyping);
  ui.input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state.replyTo) setReplyTo(null);
  });
  ui.form.addEventListener('submit', (e) => void submit(e));
}
