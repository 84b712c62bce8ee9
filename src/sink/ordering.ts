import type { Limiter } from "./limiter.ts";

/**
 * How records of one partition may overlap (see `--ordering`). `message` and `none` overlap alike here; under
 * `message` a response also waits for the message it answers, which the delivery sees to (it knows the ids).
 */
export type Ordering = "partition" | "key" | "message" | "none";
export const ORDERINGS: readonly Ordering[] = ["partition", "key", "message", "none"];

/** What running in order needs besides the items. */
export interface OrderOptions<T> {
  ordering: Ordering;
  /** The ordering key of an item; undefined means "no key": it waits for no other item. */
  keyOf: (item: T) => string | undefined;
  /** Shared by all partitions: at most its size of items run at once, process-wide. */
  limiter: Limiter;
  signal: AbortSignal;
}

/**
 * Runs `work` for each item, in order within the ordering's scope: one at a time (`partition`), one at a
 * time per key (`key`), or freely (`message`, `none`), never more at once than the limiter allows. `work` returns
 * false to halt: no further item starts. Resolves when every started item has finished; rejects with the
 * first error of `work` (after the others finished), or when `signal` aborts while waiting for a slot.
 */
export async function runInOrder<T>(
  items: readonly T[],
  options: OrderOptions<T>,
  work: (item: T) => Promise<boolean>,
): Promise<void> {
  const { limiter, signal } = options;
  const tails = new Map<string, Promise<unknown>>();
  const running: Array<Promise<unknown>> = [];
  let halted = false;
  // An abort while waiting for a slot ends the loop; the items already started still run to their end.
  let aborted: { reason: unknown } | undefined;
  for (const item of items) {
    if (halted) break;
    try {
      await limiter.acquire(signal);
    } catch (reason) {
      aborted = { reason };
      break;
    }
    const key = options.ordering === "key" ? options.keyOf(item) : undefined;
    const before = key === undefined ? undefined : tails.get(key);
    const run = (async () => {
      try {
        await before?.catch(() => {}); // a failed predecessor halts the run; it does not block its key
        if (halted) return;
        if (!(await work(item))) halted = true;
      } catch (error) {
        halted = true;
        throw error;
      } finally {
        limiter.release();
      }
    })();
    if (key !== undefined) tails.set(key, run);
    running.push(run);
    // Strict partition order: the next item starts only after this one ended.
    if (options.ordering === "partition") await run.catch(() => {});
  }
  const results = await Promise.allSettled(running);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) throw failure.reason;
  if (aborted) throw aborted.reason;
}
