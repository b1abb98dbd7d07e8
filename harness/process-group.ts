/**
 * Servers the harness starts detached (their own process group, so that nginx's workers go
 * with their master): connect probe, group kill, stop, and a last-resort kill of every group
 * still running when the test or bench process exits.
 */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
});

/** Killed with its group if this process exits before `stopGroup`. */
export function trackGroup(child: ChildProcess): void {
  live.add(child);
}

/** No longer killed at exit: the group ended by itself (its leader exited after cleaning up). */
export function untrackGroup(child: ChildProcess): void {
  live.delete(child);
}

/**
 * SIGTERM (nginx's fast shutdown; SIGQUIT would wait for every open SSE stream to end), then
 * SIGKILL if the master is still there after 5 s; then SIGKILL to the group once more for a
 * worker outliving its master.
 */
export async function stopGroup(child: ChildProcess): Promise<void> {
  untrackGroup(child);
  if (child.pid === undefined) return; // never started
  killGroup(child, 'SIGTERM');
  if (!(await waitForExit(child, 5000))) {
    killGroup(child, 'SIGKILL');
    await waitForExit(child, 5000);
  }
  killGroup(child, 'SIGKILL');
}
