import type { PartitionStart } from "../kafka/admin.ts";
import type { LogFields } from "../log.ts";

/**
 * Records deleted by retention before eventsink read them. KafkaJS only says "offset out of range" and
 * moves the partition to its earliest record; these pure steps remember where the partition stood, so
 * that the first batch after the move can name the records lost. Undefined: nothing is suspected.
 */
export type LossMark = number | "unknown" | undefined;

/**
 * When a partition is assigned and nothing was taken yet: a committed offset already below the earliest
 * record kept means records were deleted unread.
 */
export function markAtAssignment(mark: LossMark, start: PartitionStart): LossMark {
  const deleted = start.committed !== undefined && start.committed < start.earliest;
  return deleted || mark === "unknown" ? start.committed ?? "unknown" : mark;
}

/**
 * When KafkaJS found the fetch offset deleted: every record before the fetch position was taken (and
 * stays in hand), so the loss starts after the last one taken, else at the group's committed offset.
 */
export function markAtOutOfRange(lastTaken: number | undefined, startOffset: number | undefined): LossMark {
  return lastTaken !== undefined ? lastTaken + 1 : startOffset ?? "unknown";
}

/**
 * The warning to log when the first batch after a mark begins at `earliest`, and how many records were lost
 * (0 when the mark is unknown); undefined when none was lost.
 */
export function lossReport(
  mark: Exclude<LossMark, undefined>,
  where: { topic: string; partition: number; earliest: number },
): { message: string; fields: LogFields; lost: number } | undefined {
  const { topic, partition, earliest } = where;
  const from = mark === "unknown" ? undefined : mark;
  if (from !== undefined && from >= earliest) return undefined;
  return {
    message: from === undefined
      ? `Records of partition ${partition} before offset ${earliest} were deleted (retention) before ` +
        "eventsink read them; resuming at the earliest record left"
      : `Records ${from} to ${earliest - 1} (${earliest - from}) of partition ${partition} were deleted ` +
        "(retention) before eventsink delivered them: they are lost to this sink. Resuming at the " +
        "earliest record left",
    fields: { topic, partition, lostFrom: from, lostTo: earliest - 1, resumeAt: earliest },
    lost: from === undefined ? 0 : earliest - from,
  };
}
