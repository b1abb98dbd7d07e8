/** The simulated player: a position that advances while playing, and the timeline slider. */

import { formatTime, ui } from './dom.js';
import { comments, duration, state } from './page-state.js';

const KEY_STEPS_S: Record<string, number> = {
  ArrowRight: 5,
  ArrowLeft: -5,
  PageUp: 30,
  PageDown: -30,
};

export function renderPosition(): void {
  const total = duration();
  ui.position.textContent = `${formatTime(state.position)} / ${formatTime(total)}`;
  ui.composePosition.textContent = `at ${formatTime(state.replyTo ? state.replyTo.timestamp : state.position)}`;
  ui.progress.style.width = `${Math.min(100, (state.position / total) * 100)}%`;
  ui.timeline.setAttribute('aria-valuemax', String(Math.round(total)));
  ui.timeline.setAttribute('aria-valuenow', String(Math.floor(state.position)));
  ui.timeline.setAttribute('aria-valuetext', formatTime(state.position));
  for (const m of Array.from(ui.markers.children)) {
    const c = comments().get(Number((m as HTMLElement).dataset.commentId));
    if (c) m.classList.toggle('passed', c.timestamp <= state.position);
  }
}

export function seek(seconds: number): void {
  state.position = Math.min(duration(), Math.max(0, seconds));
  renderPosition();
}

export function setPlaying(playing: boolean): void {
  state.playing = playing && !!state.track;
  ui.play.textContent = state.playing ? 'Pause' : 'Play';
  ui.play.dataset.playing = String(state.playing);
  if (state.playing) {
    if (state.position >= duration()) state.position = 0;
    state.lastFrame = performance.now();
    requestAnimationFrame(frame);
  }
}

function frame(now: number): void {
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

export function installPlayer(): void {
  ui.play.addEventListener('click', () => setPlaying(!state.playing));
  ui.timeline.addEventListener('click', (e) => {
    const rect = ui.timeline.getBoundingClientRect();
    if (rect.width > 0) seek(((e.clientX - rect.left) / rect.width) * duration());
  });
  ui.timeline.addEventListener('keydown', (e) => {
    const step = KEY_STEPS_S[e.key];
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
}
