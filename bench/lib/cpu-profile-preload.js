// Preloaded into each replica (NODE_OPTIONS=--require ...) when the bench runs
// with --profile-dir: Node 20 refuses --cpu-prof in NODE_OPTIONS, so the V8
// profiler is driven through the inspector. The bench sends SIGUSR2 when the
// measured window starts and again when it ends; the profile of that window is
// written then (or at exit if the second signal never came). The first window of a
// process is replica-<pid>.cpuprofile, later ones (--passes) replica-<pid>-<n>.cpuprofile.
const inspector = require('node:inspector');
const fs = require('node:fs');
const path = require('node:path');

const dir = process.env.BENCH_CPU_PROFILE_DIR;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  let running = false;
  let windows = 0;
  const stop = () => {
    if (!running) return;
    running = false;
    windows++;
    const file = `replica-${process.pid}${windows > 1 ? `-${windows}` : ''}.cpuprofile`;
    // In-thread inspector sessions answer synchronously, so this completes before exit.
    session.post('Profiler.stop', (err, res) => {
      if (!err) {
        fs.writeFileSync(path.join(dir, file), JSON.stringify(res.profile));
      }
    });
  };
  process.on('SIGUSR2', () => {
    if (running) {
      stop();
    } else {
      running = true;
      session.post('Profiler.start');
    }
  });
  process.on('exit', stop);
}
