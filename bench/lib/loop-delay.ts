import { monitorEventLoopDelay } from 'node:perf_hooks';
import { round } from './stats';

/**
 * The longest and the p99 event-loop delay (ms) of a process over a window, at the replicas'
 * resolution (prom-client's 10 ms monitor: ~10 ms means no stall). Read for the replicas (from
 * /metrics), the generator and its subscriber workers.
 */
export interface LoopDelay {
  max_ms: number;
  p99_ms: number;
}

/**
 * The generator's own loop delay over a post window, as every result reports it (ours per
 * pass, Nchan's): its main thread (the poster) and each subscriber worker (`--workers`), which
 * timestamps the arrivals. A stall of either delays what it times, on either server.
 */
export interface GeneratorLoopDelays {
  generator_event_loop_delay_post_window: LoopDelay;
  generator_workers_event_loop_delay_post_window: LoopDelay[];
}

/** The generator's longest stall in the window: its main thread or any subscriber worker. */
export function generatorLoopMaxMs(r: GeneratorLoopDelays): number {
  return Math.max(
    r.generator_event_loop_delay_post_window.max_ms,
    ...r.generator_workers_event_loop_delay_post_window.map((d) => d.max_ms),
  );
}

/** Reads this process's event-loop delay from now until `read()`. */
export function loopDelayMonitor(): { read(): LoopDelay } {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  return {
    read() {
      histogram.disable();
      return {
        max_ms: round(histogram.max / 1e6, 1),
        p99_ms: round(histogram.percentile(99) / 1e6, 1),
      };
    },
  };
}
