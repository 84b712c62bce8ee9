import { retryDelay } from "./backoff.ts";
import type { RetryPolicy } from "./backoff.ts";
import { formatDuration } from "../duration.ts";
import type { Logger } from "../log.ts";
import type { Outcome } from "./outcome.ts";

/**
 * How a record ended: accepted; refused for good (by the EventStore, locally, or after giving up); or a
 * tombstone, which is no message at all and is skipped whatever the policy.
 */
export type Settled =
  | { kind: "delivered"; status: number; attempts: number }
  | { kind: "rejected"; status: number | undefined; reason: string; attempts: number }
  | { kind: "tombstone" };

/** Hears the outcome of each delivery attempt and how long it took. */
export type AttemptObserver = (outcome: Outcome, durationMs: number) => void;

/** What settling a record needs; all I/O comes in here so that tests can drive time and answers. */
export interface SettleDeps {
  /** One delivery attempt. */
  attempt: (signal: AbortSignal) => Promise<Outcome>;
  policy: RetryPolicy;
  /** Logger carrying the record's topic, partition, offset and key. */
  log: Logger;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  now: () => number;
  /** Decides whether a configuration fault is logged now; shared so that N partitions do not log N times. */
  shouldAlarm: () => boolean;
  /** Hears the outcome of every attempt (for health and metrics). */
  observe?: AttemptObserver;
  random?: () => number;
}

/** A failing record is logged at warn on these attempts, and at debug in between. */
const LOUD_ATTEMPTS = new Set([1, 10, 100, 1000]);

/** Whether a failure on this attempt is worth a warning (the first, then every power of ten). */
export function isLoudAttempt(attempt: number): boolean {
  return LOUD_ATTEMPTS.has(attempt);
}

/**
 * Attempts delivery until the record is delivered or rejected. Transient failures and configuration
 * faults are retried with backoff for as long as it takes (or until the give-up time, for transient
 * ones); rejects only when `signal` aborts, leaving the record unaccounted.
 */
export async function settleRecord(deps: SettleDeps, signal: AbortSignal): Promise<Settled> {
  const firstAt = deps.now();
  // A record that met a configuration fault is never given up on, even when its failures alternate with
  // transient ones: a TLS refusal, for one, often shows as a dropped connection on the next attempt.
  let configFault = false;
  for (let attempts = 1;; attempts++) {
    const startedAt = deps.now();
    const outcome = await deps.attempt(signal);
    deps.observe?.(outcome, deps.now() - startedAt);
    switch (outcome.kind) {
      case "delivered":
        if (attempts > 1) deps.log.info("Delivered after retries", { attempts, status: outcome.status });
        return { kind: "delivered", status: outcome.status, attempts };
      case "rejected":
        return { kind: "rejected", status: outcome.status, reason: outcome.reason, attempts };
      case "retry": {
        const failingMs = deps.now() - firstAt;
        if (deps.policy.giveUpMs !== undefined && !configFault && failingMs >= deps.policy.giveUpMs) {
          const reason = `gave up after ${attempts} attempts over ${formatDuration(failingMs)} ` +
            `(--retry-give-up): ${outcome.reason}`;
          return { kind: "rejected", status: outcome.status, reason, attempts };
        }
        const fields = { attempt: attempts, status: outcome.status, reason: outcome.reason };
        if (isLoudAttempt(attempts)) deps.log.warn("Delivery failed, will retry", fields);
        else deps.log.debug("Delivery failed, will retry", fields);
        break;
      }
      case "config-fault":
        configFault = true;
        if (deps.shouldAlarm()) {
          deps.log.error(
            "Configuration fault: every delivery would fail alike, so this partition is held and " +
              "retried until it is fixed",
            { attempt: attempts, status: outcome.status, reason: outcome.reason },
          );
        }
        break;
    }
    const retryAfterMs = outcome.kind === "retry" ? outcome.retryAfterMs : undefined;
    await deps.sleep(retryDelay(attempts - 1, deps.policy, retryAfterMs, deps.random), signal);
  }
}

/** A rate limit for alarms: true at most once per `intervalMs`. */
export function alarmThrottle(intervalMs: number, now: () => number): () => boolean {
  let last = -Infinity;
  return () => {
    if (now() - last < intervalMs) return false;
    last = now();
    return true;
  };
}
