import http from 'node:http';
import { findNchanModule, startNchan, type RunningNchan } from '../harness/nchan';
import { startRedisServer, type RedisServer } from '../harness/redis-server';
import { waitFor } from '../harness/wait';

/**
 * The bench's Nchan pings its streams as our heartbeat does (`: ping`, nothing else), so both
 * sides of the comparison pay for keeping proxies awake.
 */
let redis: RedisServer | undefined;
let nchan: RunningNchan | undefined;
let req: http.ClientRequest | undefined;

afterAll(async () => {
  req?.destroy();
  await nchan?.stop();
  await redis?.stop();
});

test('with pingIntervalS, each stream gets `: ping` comments and no ping events', async () => {
  const mod = findNchanModule();
  if ('missing' in mod) throw new Error(mod.missing); // .ci/run installs libnginx-mod-nchan
  redis = await startRedisServer();
  nchan = await startNchan({
    redisUrl: redis.url,
    connections: 100,
    eventName: 'new_comment',
    pingIntervalS: 1,
  });
  let text = '';
  req = http.get(
    `${nchan.url}/sub/ping-test`,
    { headers: { Accept: 'text/event-stream' } },
    (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
    },
  );
  await waitFor(() => text.split(': ping\n\n').length > 2, {
    what: 'two pings',
    timeoutMs: 10_000,
  });
  expect(text).not.toContain('event:');
  expect(text).not.toContain('data:');
});
