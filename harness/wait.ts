/**
 * The one polling helper of the tests and the bench: for conditions that no event announces
 * (a process listening, a counter reaching a value, a page showing a row).
 */
export interface WaitOptions {
  /** Named in the timeout error. */
  what?: string;
  timeoutMs?: number;
  intervalMs?: number;
  /** A reason here ends the wait at once (a process that exited will never answer). */
  failIf?: () => string | false | undefined;
}

/**
 * Polls `probe` until it gives a value (anything but `undefined` or `false`) and resolves with
 * it. A probe that throws has not succeeded yet (a server still starting refuses connections);
 * the last error becomes the timeout error's cause.
 */
export async function waitForValue<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  { what = 'condition', timeoutMs = 10000, intervalMs = 10, failIf }: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const failure = failIf?.();
    if (failure) throw new Error(`gave up waiting for ${what}: ${failure}`);
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`, {
        cause: lastError,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Polls `check` until it returns true; see `waitForValue`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  options: WaitOptions = {},
): Promise<void> {
  await waitForValue(async () => (await check()) || undefined, options);
}
