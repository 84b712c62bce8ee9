import type { PoisonPolicy } from "./poison.ts";

/** Retry timing for transient failures and configuration faults. */
export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  /** Undefined: never give up on a transient failure (the default). */
  giveUpMs: number | undefined;
  /** When a record failing alone is taken as rejected; undefined: never. */
  poison: PoisonPolicy | undefined;
  /** How long a response refused because the message it answers is not stored is retried; undefined: not. */
  responseWaitMs: number | undefined;
}

/** The longest wait a `Retry-After` may impose, so that a bogus header cannot park a partition for days. */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

/** Exponential backoff with full jitter: a random wait in [0, min(max, initial·2^attempt)). */
export function backoffDelay(
  attempt: number,
  policy: { initialMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * ceiling);
}

/** The wait before the next attempt: the server's `Retry-After` when it gave one, else backoff. */
export function retryDelay(
  attempt: number,
  policy: { initialMs: number; maxMs: number },
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, MAX_RETRY_AFTER_MS);
  return backoffDelay(attempt, policy, random);
}

/** Parses `Retry-After` (delay-seconds or an HTTP-date) into milliseconds from `now`; undefined if absent or bad. */
export function parseRetryAfter(value: string | null, now: Date): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1_000;
  // An HTTP-date always names a month; this keeps Date.parse from reading "1.5" or "-3" as a date.
  if (!/[A-Za-z]{3}/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}
