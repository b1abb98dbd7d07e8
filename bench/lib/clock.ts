/**
 * The bench's one clock. `process.hrtime` reads CLOCK_MONOTONIC, which on
 * Linux is system-wide: readings taken in different processes on the same
 * machine are directly comparable (unlike `performance.now()`, whose origin
 * is per process). Milliseconds as a float, microsecond resolution.
 */
export const nowMs = (): number => Number(process.hrtime.bigint() / 1000n) / 1000;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
