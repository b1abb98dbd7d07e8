import http from 'node:http';
import net from 'node:net';
import { useCluster, httpRequest, waitReady, type Cluster } from './support/cluster';
import { waitFor } from '../harness/wait';
import { SseClient, type CommentJson, type SseItem } from './support/sse-client';

/**
 * Graceful drain of one replica (SIGTERM) while it holds open streams and a
 * request in flight; a second replica shows that nothing committed is lost.
 */

const DRAIN_SPREAD_MS = 1000;
const SHUTDOWN_TIMEOUT_MS = 8000;
const STREAMS = 20;
/** Slack for a heavily loaded 2-core machine. */
const MARGIN_MS = 3000;

const c = useCluster({
  replicas: 2,
  nginx: false,
  env: {
    DRAIN_SPREAD_MS: String(DRAIN_SPREAD_MS),
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    MAX_STREAMS_PER_USER: '100',
  },
});

type KeptAnswer = { status: number } | { closed: string };

/** One keep-alive HTTP/1.1 connection on which requests are sent one after another. */
class KeptConnection {
  private buffer = '';
  private closedReason: string | null = null;
  private onChange: (() => void) | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.onChange?.();
    });
    const closed = (why: string) => {
      this.closedReason ??= why;
      this.onChange?.();
    };
    socket.on('end', () => closed('end'));
    socket.on('close', () => closed('close'));
    socket.on('error', (err) => closed(err.message));
  }

  static open(port: number): Promise<KeptConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () =>
        resolve(new KeptConnection(socket)),
      );
      socket.once('error', reject);
    });
  }

  /** Sends GET `path`; resolves with the answer's status, or how the connection ended instead. */
  get(path: string, timeoutMs = 10000): Promise<KeptAnswer> {
    if (this.closedReason !== null) return Promise.resolve({ closed: this.closedReason });
    this.buffer = '';
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no answer to ${path} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const check = () => {
        const headEnd = this.buffer.indexOf('\r\n\r\n');
        if (headEnd >= 0) {
          const head = this.buffer.slice(0, headEnd);
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? '0');
          if (Buffer.byteLength(this.buffer.slice(headEnd + 4)) >= length) {
            clearTimeout(timer);
            this.onChange = null;
            resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0) });
            return;
          }
        }
        if (this.closedReason !== null) {
          clearTimeout(timer);
          this.onChange = null;
          resolve({ closed: this.closedReason });
        }
      };
      this.onChange = check;
      check();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A POST whose headers are sent and acknowledged (100-continue) before its body. */
interface SlowAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

function startSlowPost(
  url: string,
  token: string,
  body: string,
  agent: http.Agent | false = false,
): Promise<{ req: http.ClientRequest; answer: Promise<SlowAnswer> }> {
  return new Promise((resolveStarted, rejectStarted) => {
    let answerResolve!: (a: SlowAnswer) => void;
    let answerReject!: (e: Error) => void;
    const answer = new Promise<SlowAnswer>((res, rej) => {
      answerResolve = res;
      answerReject = rej;
    });
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json',
        'Content-Length': String(Buffer.byteLength(body)),
        // The server answers "100 Continue" once it has parsed the headers and
        // handed the request to the app: proof that the request is in flight.
        Expect: '100-continue',
      },
    });
    req.on('continue', () => resolveStarted({ req, answer }));
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () =>
        answerResolve({ status: res.statusCode ?? 0, headers: res.headers, text }),
      );
    });
    req.on('error', (err) => {
      rejectStarted(err);
      answerReject(err);
    });
    req.flushHeaders();
  });
}

test('SIGTERM: not ready, streams told to retry and closed over the spread, in-flight request finishes, exit 0, nothing lost', async () => {
  const [a, b] = c().replicas as [
    NonNullable<Cluster['replicas'][0]>,
    NonNullable<Cluster['replicas'][0]>,
  ];
  const trackId = await c().newTrack();
  const path = `/api/tracks/${trackId}/events`;
  const drained: SseClient[] = [];
  let witness: SseClient | undefined;
  let kept: KeptConnection | undefined;
  let slow: http.ClientRequest | undefined;
  try {
    for (let i = 0; i < STREAMS; i++) {
      drained.push(await SseClient.open(`${a.url}${path}`, { token: c().tokens.alice }));
    }
    witness = await SseClient.open(`${b.url}${path}`, { token: c().tokens.bob });
    for (const s of [...drained, witness]) {
      expect(s.status).toBe(200);
      await s.waitForEvent((e) => e.event === 'connected', 20000);
    }

    kept = await KeptConnection.open(a.port);
    expect(await kept.get('/readyz')).toEqual({ status: 200 });

    const body = JSON.stringify({ content: 'committed while draining', timestamp: 3 });
    const half = Math.floor(body.length / 2);
    const started = await startSlowPost(
      `${a.url}/api/tracks/${trackId}/comments`,
      c().tokens.carol,
      body,
    );
    slow = started.req;
    slow.write(body.slice(0, half));

    const sigtermAt = Date.now();
    const exit = a.stop('SIGTERM').then((code) => ({ code, ms: Date.now() - sigtermAt }));

    // Not ready any more: fresh connections are refused, or /readyz says 503.
    let fresh: string | undefined;
    await waitFor(
      async () => {
        try {
          const res = await httpRequest(`${a.url}/readyz`, 'GET', { timeoutMs: 5000 });
          fresh = `status ${res.status}`;
          return res.status === 503;
        } catch (err) {
          fresh = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
          return true;
        }
      },
      { timeoutMs: 15000, intervalMs: 20, what: 'replica A to stop being ready' },
    );
    expect(fresh).toMatch(/^(status 503|ECONNREFUSED|ECONNRESET)$/);
    // The connection that was already open: a 503, or closed by the server (it was idle).
    const again = await kept.get('/readyz');
    expect(again).not.toEqual({ status: 200 });
    if ('status' in again) expect(again.status).toBe(503);

    // The in-flight request completes normally.
    slow.end(body.slice(half));
    const answer = await started.answer;
    expect(answer.status).toBe(201);
    const comment = (JSON.parse(answer.text) as { comment: CommentJson }).comment;

    // Every drained stream got the drain's retry hint, then was closed.
    for (const s of drained) await s.waitForClose(DRAIN_SPREAD_MS + MARGIN_MS * 2);
    const goodbyes = drained.map((s) => {
      const hint = s.items.find(
        (i): i is Extract<SseItem, { kind: 'retry' }> => i.kind === 'retry' && i.at >= sigtermAt,
      );
      expect(hint).toEqual({ kind: 'retry', ms: 500, at: expect.any(Number) });
      // The hint is the last thing on the stream.
      expect(s.items[s.items.length - 1]).toBe(hint);
      return hint!.at;
    });
    const first = Math.min(...goodbyes);
    const last = Math.max(...goodbyes);
    expect(last - sigtermAt).toBeLessThanOrEqual(DRAIN_SPREAD_MS + MARGIN_MS);
    // Spread out, not all at once (a reconnect storm on the other replicas).
    expect(last - first).toBeGreaterThanOrEqual(DRAIN_SPREAD_MS * 0.5);

    const { code, ms } = await exit;
    expect(code).toBe(0);
    expect(ms).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    process.stdout.write(
      `drain: fresh connection ${fresh}; kept connection ${JSON.stringify(again)}; ` +
        `goodbyes ${first - sigtermAt}..${last - sigtermAt} ms after SIGTERM; exit ${code} after ${ms} ms\n`,
    );

    // Committed during the drain: the other replica's subscriber gets it.
    const delivered = await witness.waitForEvent(
      (e) => e.event === 'new_comment' && e.data.comment?.id === comment.id,
      20000,
    );
    expect(delivered.data.comment?.content).toBe('committed while draining');

    // A new stream on the drained port is impossible now; the other replica takes it.
    const resumed = await SseClient.open(`${b.url}${path}`, {
      token: c().tokens.alice,
      lastEventId: '0',
    });
    drained.push(resumed);
    await resumed.waitForEvent(
      (e) => e.event === 'new_comment' && e.data.comment?.id === comment.id,
      20000,
    );
  } finally {
    slow?.destroy();
    kept?.destroy();
    for (const s of drained) s.close();
    witness?.close();
  }
}, 180000);

test('SIGTERM: a keep-alive connection busy at the signal is closed after its answer and does not hold the exit', async () => {
  // The previous test stopped slot 0; bring it back on its port.
  if (c().replicas[0]!.exited) await c().restartReplica(0);
  const a = c().replicas[0]!;
  await waitReady(a.url, 60000);
  const trackId = await c().newTrack();
  // A client (or proxy) that keeps connections open between requests.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let slow: http.ClientRequest | undefined;
  try {
    const body = JSON.stringify({ content: 'answered on a kept connection', timestamp: 1 });
    const half = Math.floor(body.length / 2);
    const started = await startSlowPost(
      `${a.url}/api/tracks/${trackId}/comments`,
      c().tokens.carol,
      body,
      agent,
    );
    slow = started.req;
    slow.write(body.slice(0, half));

    const sigtermAt = Date.now();
    const exit = a.stop('SIGTERM').then((code) => ({ code, ms: Date.now() - sigtermAt }));
    await waitFor(
      async () => {
        try {
          return (await httpRequest(`${a.url}/readyz`, 'GET', { timeoutMs: 5000 })).status === 503;
        } catch {
          return true; // refused: the listener is closed
        }
      },
      { timeoutMs: 15000, intervalMs: 20, what: 'replica A to stop being ready' },
    );

    slow.end(body.slice(half));
    const answer = await started.answer;
    expect(answer.status).toBe(201);
    const { code, ms } = await exit;
    expect({ code, drainTimedOut: a.output().includes('drain timed out') }).toEqual({
      code: 0,
      drainTimedOut: false,
    });
    expect(ms).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    // The server told the client not to reuse the connection (and closed it).
    expect(answer.headers.connection).toBe('close');
  } finally {
    slow?.destroy();
    agent.destroy();
  }
}, 180000);
