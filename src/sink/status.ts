import type { DeliveryResult } from "../delivery/deliver.ts";
import type { Ending } from "../settle/settle.ts";

/**
 * Records by how they ended. Every record taken for delivery ends in exactly one of delivered,
 * deadLettered, skipped — or unfinished, when eventsink stopped or lost the partition before it ended
 * (uncommitted, so delivered again later): consumed = delivered + deadLettered + skipped + unfinished.
 */
export interface Counts {
  consumed: number;
  delivered: number;
  deadLettered: number;
  skipped: number;
  unfinished: number;
  /**
   * Records Kafka deleted (retention) before eventsink read or delivered them, as far as their offsets are
   * known: lost to this sink, never consumed, each range named in a warning.
   */
  deleted: number;
  /** Delivery attempts beyond the first, over all records. */
  retries: number;
}

/** Where one assigned partition stands. */
export interface PartitionStatus {
  partition: number;
  /** The offset last committed by this process, else the group's committed offset when assigned. */
  committed: number | undefined;
  /** The first record not yet accounted for (the next commit point), if records were taken. */
  next: number | undefined;
  /** The log-end offset seen with the latest batch. */
  highWatermark: number | undefined;
  /** Records taken but not yet accounted for. */
  inFlight: number;
}

/** Where the sink is in its life: consuming once it joined the group and fetches. */
export type SinkPhase = "starting" | "consuming" | "stopping" | "stopped";

/** A snapshot for health, metrics and progress reporting. */
export interface SinkStatus {
  phase: SinkPhase;
  counts: Counts;
  /** Assigned partitions, in order; empty before the group was joined. */
  partitions: PartitionStatus[];
}

/** A running sink. */
export interface Sink {
  /** Runs until stopped or failed; resolves with the process exit code. */
  run(): Promise<{ exitCode: 0 | 1; counts: Counts }>;
  /**
   * Starts a clean stop: no new records, no more retries, POSTs in flight finish (within the grace period),
   * commit. `now` (a second signal) abandons what is in flight at once; the run then exits 1.
   */
  stop(options?: { now: boolean }): void;
  /**
   * A partition's records before `offset` were deleted and no batch will bring them (a bounded run's end:
   * see deleted_to_end.ts): counts the `records` lost and moves the partition's commit point past them.
   */
  skipDeleted(partition: number, offset: number, records: number): void;
  status(): SinkStatus;
}

export function zeroCounts(): Counts {
  return { consumed: 0, delivered: 0, deadLettered: 0, skipped: 0, unfinished: 0, deleted: 0, retries: 0 };
}

/** An assigned partition that no batch came from yet. */
export function unread(partition: number): PartitionStatus {
  return { partition, committed: undefined, next: undefined, highWatermark: undefined, inFlight: 0 };
}

/** Delivery attempts beyond the first. */
export function retriesOf(result: DeliveryResult): number {
  return result.kind !== "tombstone" && result.attempts > 1 ? result.attempts - 1 : 0;
}

/** A record taken for delivery (counted consumed and unfinished) ended: it is unfinished no more. */
export function countEnding(counts: Counts, ending: Exclude<Ending, "held">): void {
  counts[ENDING_COUNTS[ending]]++;
  counts.unfinished--;
}

const ENDING_COUNTS = {
  "delivered": "delivered",
  "dead-lettered": "deadLettered",
  "skipped": "skipped",
} as const satisfies Record<Exclude<Ending, "held">, keyof Counts>;
