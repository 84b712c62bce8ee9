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

/** Runs one batch of items; see {@link createOrderedRunner}. */
export type OrderedRunner<T> = (items: readonly T[]) => Promise<void>;

/**
 * Runs `work` for each item of successive batches, in order within the ordering's scope: one at a time
 * (`partition`), one at a time per key (`key`), or freely (`message`, `none`), never more at once than the
 * limiter allows. A batch's items start once the previous batch's have started, not ended, so that a
 * partition does not drain between batches; keys keep their order across batches. An item waiting for its
 * key's predecessor holds no slot. `work` returns false to halt: no further item starts, in this batch or a
 * later one. A batch's promise resolves when every started item of it has finished; it rejects with the
 * first error of `work` among them (after the others finished), or when `signal` aborts while they wait for
 * a slot.
 */
export function createOrderedRunner<T>(
  options: OrderOptions<T>,
  work: (item: T) => Promise<boolean>,
): OrderedRunner<T> {
  const { limiter, signal } = options;
  /** The latest item started of each key, until it ends; it never rejects. */
  const tails = new Map<string, Promise<void>>();
  let halted = false;
  /** The previous batch's items all started (or the batch ended early). */
  let issuing: Promise<void> = Promise.resolve();

  /** One item, within a slot; `before` is its key's predecessor, after which it takes its slot. */
  async function runItem(item: T, before: Promise<void> | undefined): Promise<void> {
    if (before !== undefined) {
      await before; // a failed predecessor halts the run; it does not block its key
      if (halted) return;
      await limiter.acquire(signal);
    }
    try {
      if (halted) return;
      if (!(await work(item))) halted = true;
    } catch (error) {
      halted = true;
      throw error;
    } finally {
      limiter.release();
    }
  }

  function follow(key: string, run: Promise<void>): void {
    // One promise per keyed item: the hot path of `key` makes no more.
    const clear = () => {
      if (tails.get(key) === ended) tails.delete(key);
    };
    const ended = run.then(clear, clear);
    tails.set(key, ended);
  }

  return async (items) => {
    const running: Array<Promise<void>> = [];
    // An abort while waiting for a slot ends the loop; the items already started still run to their end.
    let aborted: { reason: unknown } | undefined;
    const issued = issuing.then(async () => {
      for (const item of items) {
        if (halted) break;
        const key = options.ordering === "key" ? options.keyOf(item) : undefined;
        const before = key === undefined ? undefined : tails.get(key);
        // A free slot is taken at once; waiting for one costs a promise and a turn of the event loop.
        if (before === undefined && (signal.aborted || !limiter.tryAcquire())) {
          try {
            await limiter.acquire(signal);
          } catch (reason) {
            aborted = { reason };
            break;
          }
        }
        const run = runItem(item, before);
        if (key !== undefined) follow(key, run);
        running.push(run);
        // Strict partition order: the next item starts only after this one ended.
        if (options.ordering === "partition") await run.catch(() => {});
      }
    });
    issuing = issued;
    await issued;
    const results = await Promise.allSettled(running);
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure) throw failure.reason;
    if (aborted) throw aborted.reason;
  };
}
