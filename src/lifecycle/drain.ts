import type http from 'node:http';
import type { Logger } from 'pino';

/**
 * Responses in progress, so that a drain can end their keep-alive connections. server.close()
 * only closes connections idle at that instant: one busy with a request then would go idle
 * after its answer and hold the exit until the client or keepAliveTimeout closed it.
 */
export class InFlightResponses {
  private readonly open = new Set<http.ServerResponse>();
  private draining = false;

  /** Tracks `server`'s requests, ahead of its other request listeners. */
  track(server: http.Server): void {
    server.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
      if (this.draining) {
        closeAfterAnswer(res);
        return;
      }
      this.open.add(res);
      // `on`, not `once`: close fires once anyway, and a once-wrapper per open stream costs memory.
      res.on('close', () => this.open.delete(res));
    });
  }

  /** False once draining: /readyz then answers 503. */
  get accepting(): boolean {
    return !this.draining;
  }

  /** From now on every answer, including those in progress, closes its connection. */
  startDraining(): void {
    this.draining = true;
    for (const res of this.open) closeAfterAnswer(res);
  }
}

function closeAfterAnswer(res: http.ServerResponse): void {
  if (!res.headersSent) res.setHeader('Connection', 'close');
}

export interface ShutdownSteps {
  server: http.Server;
  inFlight: InFlightResponses;
  logger: Logger;
  /** After this long, remaining connections are closed and the exit code is 1. */
  timeoutMs: number;
  /** Moves open streams to other replicas (they hold the server's close until they end). */
  drainStreams(): Promise<void>;
  /** Releases everything else once the connections are gone. */
  release(): Promise<void>;
}

/**
 * Graceful drain: readyz → 503, stop accepting, move streams to other replicas, finish
 * in-flight, close, release. Returns the shutdown function: called again it returns the
 * first call's promise, which resolves with the exit code to use.
 */
export function gracefulShutdown(steps: ShutdownSteps): (reason?: string) => Promise<number> {
  const { server, logger } = steps;
  let stopping: Promise<number> | undefined;
  return (reason = 'shutdown') =>
    (stopping ??= (async () => {
      steps.inFlight.startDraining();
      logger.info({ reason }, 'draining');
      let timedOut = false;
      const bound = new Promise<void>((resolve) =>
        setTimeout(() => {
          timedOut = true;
          resolve();
        }, steps.timeoutMs).unref(),
      );
      let idleSweep: NodeJS.Timeout | undefined;
      const graceful = (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await steps.drainStreams();
        // A response whose headers went out (keep-alive) before the drain leaves an idle
        // connection behind when it ends: close those as they turn idle.
        server.closeIdleConnections();
        idleSweep = setInterval(() => server.closeIdleConnections(), 250);
        await closed;
      })();
      await Promise.race([graceful, bound]);
      clearInterval(idleSweep);
      if (timedOut) {
        logger.error('drain timed out; closing remaining connections');
        server.closeAllConnections();
      }
      await steps.release();
      logger.info('stopped');
      return timedOut ? 1 : 0;
    })());
}
