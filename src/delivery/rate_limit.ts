import { eitherSignal } from "../async.ts";
import type { Deliver } from "./deliver.ts";

/**
 * A token bucket in its "virtual scheduling" form (GCRA): `perSecond` tokens a second, holding at most
 * `burst`. Each call takes one token and returns how long the caller must wait for it (0: at once);
 * the token is reserved, so concurrent callers queue up one interval apart. Pure: time is passed in.
 */
export function createRateSchedule(perSecond: number, burst: number): (nowMs: number) => number {
  const intervalMs = 1_000 / perSecond;
  const toleranceMs = (burst - 1) * intervalMs;
  // The time at which the bucket would be empty if every reserved token were taken on schedule.
  let theoreticalMs = -Infinity;
  return (nowMs) => {
    const due = Math.max(theoreticalMs, nowMs);
    const waitMs = Math.max(0, due - toleranceMs - nowMs);
    theoreticalMs = due + intervalMs;
    return waitMs;
  };
}

/** The burst allowed at a rate: a tenth of a second's worth, so that a rate holds over any second. */
export function burstFor(perSecond: number): number {
  return Math.max(1, Math.floor(perSecond / 10));
}

/**
 * Lets at most `perSecond` records a second (over all partitions) into `deliver`, any number when it is
 * undefined; retries of a record are paced by their own backoff, not by this limit.
 */
export function limitRate(
  deliver: Deliver,
  perSecond: number | undefined,
  deps: { now: () => number; sleep: (ms: number, signal: AbortSignal) => Promise<void> },
): Deliver {
  if (perSecond === undefined) return deliver;
  const schedule = createRateSchedule(perSecond, burstFor(perSecond));
  return async (record, signal, waits) => {
    const waitMs = schedule(deps.now());
    if (waitMs > 0) await deps.sleep(waitMs, eitherSignal(signal, waits));
    return deliver(record, signal, waits);
  };
}
