import type { Batch } from "../kafka/consumer.ts";
import type { Logger } from "../log.ts";
import type { PartitionOffsets } from "./offsets.ts";

/**
 * Delivered progress is committed this often (so a record stuck in retries holds back only itself, and a
 * commit that failed is made again), and when eventsink stops.
 */
export const COMMIT_INTERVAL_MS = 1_000;

/**
 * The commits of one partition's ownership period: up to the first record not yet accounted for, one
 * after another so that they land in order, and only when the commit point moved.
 */
export class PartitionCommits {
  #tracker: PartitionOffsets;
  #log: Logger;
  /** The first offset the period took: committing it would say nothing. */
  #firstOffset: number | undefined;
  #committed: number | undefined;
  #chain: Promise<void> = Promise.resolve();
  #waiting = 0;
  /** The latest batch taken: the ticker commits through it. */
  #latest: Batch | undefined;

  constructor(tracker: PartitionOffsets, log: Logger) {
    this.#tracker = tracker;
    this.#log = log;
  }

  /** A batch was taken, beginning at `firstOffset` (undefined when it brought nothing new). */
  taken(batch: Batch, firstOffset: number | undefined): void {
    this.#latest = batch;
    this.#firstOffset ??= firstOffset;
  }

  /** The last offset committed in this period. */
  committed(): number | undefined {
    return this.#committed;
  }

  /** Commits the progress through `batch` (default: the latest one); resolves when it is done. */
  commit(batch: Batch | undefined = this.#latest): Promise<void> {
    if (batch === undefined) return this.#chain;
    this.#waiting++;
    this.#chain = this.#chain.then(() => this.#commitNow(batch)).finally(() => this.#waiting--);
    return this.#chain;
  }

  /** A commit of the ticker: none is added while the broker is slow to answer one. */
  tick(): void {
    if (this.#latest !== undefined && this.#waiting === 0) void this.commit();
  }

  async #commitNow(batch: Batch): Promise<void> {
    const offset = this.#tracker.committable();
    if (offset === undefined || offset === this.#firstOffset || offset === this.#committed) return;
    const where = { topic: batch.topic, partition: batch.partition, offset };
    try {
      await batch.commit(offset);
      this.#committed = offset;
      this.#log.debug("Committed", where);
    } catch (error) {
      // The group is rebalancing or the broker is away: those records stay uncommitted and are delivered
      // again by whoever owns the partition next. The EventStore takes repeats without harm.
      this.#log.warn("Cannot commit offset; the records after the last commit may be delivered again", {
        ...where,
        error: (error as Error).message,
      });
    }
  }
}
