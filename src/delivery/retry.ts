import { retryDelay } from "./backoff.ts";
import type { LogFields, Logger } from "../log.ts";

/** What one attempt came to: the end, with the value to return; or a failure, to try again after a wait. */
export type Attempted<T> =
  | { kind: "done"; value: T }
  | {
    kind: "again";
    /** Logged loud or quiet by attempt; absent when the attempt logged its failure itself. */
    failure?: { message: string; fields: LogFields };
    /** The peer's `Retry-After`, which replaces the backoff. */
    retryAfterMs?: number;
  };

/** What retrying needs; the waits come in here so that tests can drive time. */
export interface RetryDeps {
  policy: { initialMs: number; maxMs: number };
  log: Logger;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** A failure is logged at warn on these attempts, and at debug in between. */
const LOUD_ATTEMPTS = new Set([1, 10, 100, 1000]);

/**
 * Runs `attempt` (numbered from 1) until it is done, waiting with backoff between attempts, for as long
 * as it takes. Rejects when an attempt rejects, or when `signal` aborts a wait.
 */
export async function retryUntilDone<T>(
  deps: RetryDeps,
  attempt: (attempt: number) => Promise<Attempted<T>>,
  signal: AbortSignal,
): Promise<T> {
  for (let attempts = 1;; attempts++) {
    const result = await attempt(attempts);
    if (result.kind === "done") return result.value;
    const { failure } = result;
    if (failure !== undefined && LOUD_ATTEMPTS.has(attempts)) deps.log.warn(failure.message, failure.fields);
    else if (failure !== undefined) deps.log.debug(failure.message, failure.fields);
    await deps.sleep(retryDelay(attempts - 1, deps.policy, result.retryAfterMs, deps.random), signal);
  }
}
