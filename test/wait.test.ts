import { waitFor, waitForValue } from '../harness/wait';

test('waitForValue resolves with the first value that is not undefined or false', async () => {
  let calls = 0;
  const value = await waitForValue(() =>
    ++calls >= 3 ? { calls } : calls === 1 ? false : undefined,
  );
  expect(value).toEqual({ calls: 3 });
});

test('a probe that throws counts as not yet', async () => {
  let calls = 0;
  await waitFor(async () => {
    if (++calls < 3) throw new Error('refused');
    return true;
  });
  expect(calls).toBe(3);
});

test('times out naming what it waited for and the last error', async () => {
  const failing = waitFor(
    () => {
      throw new Error('connection refused');
    },
    { what: 'the server', timeoutMs: 30 },
  );
  await expect(failing).rejects.toThrow(
    /^timed out after 30 ms waiting for the server \(last error: connection refused\)$/,
  );
});

test('failIf ends the wait at once with its reason', async () => {
  let calls = 0;
  const failing = waitFor(() => ++calls > 1_000_000, {
    what: 'the replica',
    timeoutMs: 60_000,
    failIf: () => calls >= 2 && 'it exited',
  });
  await expect(failing).rejects.toThrow('gave up waiting for the replica: it exited');
  expect(calls).toBe(2);
});
