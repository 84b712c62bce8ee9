/**
 * A bounded run (`--until-end`) whose remaining records retention deleted after the run noted the end: KafkaJS
 * moves the partition to its earliest record, which is then at or past the end, so no batch ever comes to
 * bring the partition's position to its end, and the run would wait for ever. The run asks the broker where
 * the partition now begins after every move and, once nothing of it is in flight, names the records lost and
 * counts the partition as at its end.
 */
import type { OffsetAdmin } from "../kafka/admin.ts";
import type { Logger } from "../log.ts";
import type { Sink, SinkStatus } from "../sink/status.ts";
import type { Bounds } from "./progress.ts";

/** Records of a partition that can no longer be had: offsets `from` to `to`. */
export interface DeletedRange {
  partition: number;
  from: number;
  to: number;
}

/**
 * The partitions whose earliest record kept (`earliest`, read after a move) is at or past their end while
 * their position is short of it and nothing of them is in flight. Pure.
 */
export function deletedToEnd(
  bounds: Bounds,
  positions: ReadonlyMap<number, number>,
  earliest: ReadonlyMap<number, number>,
  status: SinkStatus,
): DeletedRange[] {
  const lost: DeletedRange[] = [];
  for (const [partition, low] of earliest) {
    const end = bounds.end?.get(partition);
    const at = positions.get(partition);
    const held = status.partitions.find((p) => p.partition === partition);
    if (end === undefined || at === undefined || held === undefined) continue;
    if (low >= end && at < end && held.inFlight === 0) lost.push({ partition, from: at, to: end - 1 });
  }
  return lost;
}

/** Watches the partitions KafkaJS moved to their earliest record; see {@link deletedToEnd}. */
export function createDeletionWatch(admin: OffsetAdmin, topic: string, log: Logger) {
  const moved = new Set<number>();
  const earliest = new Map<number, number>();
  let asking = false;

  /** Reads where the moved partitions now begin; a failed read is tried again on the next check. */
  function ask(): void {
    if (asking || moved.size === 0) return;
    asking = true;
    const asked = [...moved];
    moved.clear();
    admin.ranges(topic).then((ranges) => {
      for (const range of ranges) {
        if (asked.includes(range.partition)) earliest.set(range.partition, range.low);
      }
    }, () => asked.forEach((partition) => moved.add(partition))).finally(() => asking = false);
  }

  return {
    /** KafkaJS found the partition's fetch offset deleted. */
    moved(partition: number): void {
      earliest.delete(partition);
      moved.add(partition);
    },
    /**
     * Moves to their end the positions of partitions emptied to it, warning of the records lost, and has
     * the sink count them and commit past them.
     */
    check(
      bounds: Bounds,
      positions: Map<number, number>,
      status: SinkStatus,
      skip: Sink["skipDeleted"],
    ): void {
      ask();
      for (const { partition, from, to } of deletedToEnd(bounds, positions, earliest, status)) {
        log.warn(
          `Records ${from} to ${to} (${to - from + 1}) of partition ${partition} were deleted (retention) ` +
            "before eventsink delivered them: they are lost to this sink. Nothing is left of the partition " +
            "before the run's end offset",
          { topic, partition, lostFrom: from, lostTo: to },
        );
        positions.set(partition, to + 1);
        earliest.delete(partition);
        skip(partition, to + 1, to - from + 1);
      }
    },
  };
}
