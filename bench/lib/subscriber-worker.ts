/**
 * Child-process side of WorkerGroup: runs one SubscriberPool and answers the
 * parent over IPC. Exits when told to close or when the parent goes away.
 */
import { nowMs } from './clock';
import { loopDelayMonitor } from './loop-delay';
import { PROGRESS_MS, type FromWorker, type ToWorker } from './subscriber-group';
import { SubscriberPool } from './subscriber-pool';

let pool: SubscriberPool | undefined;
let progressTimer: NodeJS.Timeout | undefined;
let lastSent = '';
let loopDelay: ReturnType<typeof loopDelayMonitor> | undefined;

const send = (msg: FromWorker): void => {
  // The parent may be gone (it was interrupted): the 'disconnect' handler ends this process.
  if (process.connected) process.send!(msg, undefined, {}, () => undefined);
};

const pushProgress = (): void => {
  if (!pool) return;
  const p = pool.progress();
  const key = `${p.connected}/${p.everConnected}/${p.unique}/${p.duplicates}/${p.failedConnects}`;
  if (key === lastSent) return;
  lastSent = key;
  send({ t: 'progress', progress: p });
};

let shuttingDown = false;
const shutdown = (): void => {
  if (shuttingDown) return;
  shuttingDown = true;
  if (progressTimer) clearInterval(progressTimer);
  pool?.close();
  process.exit(0);
};

process.on('message', (msg: ToWorker) => {
  switch (msg.t) {
    case 'ping':
      send({ t: 'pong', id: msg.id, at: nowMs() });
      break;
    case 'open':
      pool = new SubscriberPool(msg.plan);
      progressTimer = setInterval(pushProgress, PROGRESS_MS);
      void pool.openAll().then(() => {
        pushProgress();
        send({ t: 'opened' });
      });
      break;
    case 'loop-delay-start':
      loopDelay = loopDelayMonitor();
      send({ t: 'loop-delay-started' });
      break;
    case 'loop-delay':
      send({ t: 'loop-delay', reading: loopDelay?.read() ?? null });
      loopDelay = undefined;
      break;
    case 'result':
      pushProgress();
      send({ t: 'result', result: pool!.result() });
      break;
    case 'close':
      shutdown();
      break;
  }
});
process.on('disconnect', shutdown);
