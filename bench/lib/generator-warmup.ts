/**
 * Warms the load generator itself before the first measured run: its SSE parser, delivery
 * accounting and poster run cold in the first run of a bench process and warm in every later
 * one, so with `--compare nchan` our first run met a cold generator and Nchan's a warm one.
 * A short load against the in-process fake server (no real server involved) brings the
 * generator's hot code to the state later runs see, for both sides alike.
 */
import { FakeSseServer } from './fake-server';
import { runLoad } from './load';

const TRACKS = 10;

export async function warmGenerator(workers: number): Promise<void> {
  const trackIds = Array.from({ length: TRACKS }, (_, t) => `warm-${t}`);
  const server = new FakeSseServer(trackIds, {});
  await server.listen();
  try {
    const target = { host: '127.0.0.1', port: server.port };
    await runLoad({
      runTag: 'generator-warmup',
      trackIds,
      subscriberTargets: [target],
      postTargets: [target],
      tokens: Array.from({ length: 100 }, (_, u) => `user-${u}`),
      subscribers: 1000,
      subscribersPerUser: 10,
      // 300 comments to 100 subscribers each: 30,000 frames parsed and counted.
      comments: 300,
      rate: 500,
      workers,
      connectConcurrency: 200,
      settleMs: 3000,
      reconnectDelayMs: 1000,
    });
  } finally {
    await server.close();
  }
}
