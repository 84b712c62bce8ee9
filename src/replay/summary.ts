/** The end of a run by hand: its exit code and the summary a person reads. Pure. */
import type { LogFields } from "../log.ts";
import {
  type Bounds,
  type Colour,
  formatCount,
  formatElapsed,
  formatRate,
  paint,
  recordsDone,
} from "./progress.ts";
import type { RunPlan } from "./run_plan.ts";
import type { Counts } from "../sink/status.ts";
import { formatOffsets } from "./start_position.ts";

/** How a run by hand ended. */
export interface RunResult {
  plan: RunPlan;
  topic: string;
  elapsedMs: number;
  counts: Counts;
  bounds: Bounds;
  /** Each partition's first offset not accounted for when the run ended. */
  positions: ReadonlyMap<number, number>;
  /** The sink stopped on a failure (exit code 1). */
  failed: boolean;
  deadLetterTopic: string | undefined;
  /** What became of the run's own group; undefined when it ran in `--group`. */
  group: "removed" | "kept" | "not removed" | undefined;
  /** A dry run's largest record value and where it is. */
  largest?: { bytes: number; at: string };
}

/**
 * 0: all delivered; 3: some dead-lettered, skipped or deleted by Kafka before delivery; 1: a failure, or a
 * bounded run that stopped short.
 */
export function exitCodeOf(result: RunResult): 0 | 1 | 3 {
  if (result.failed || (result.plan.untilEnd && !finished(result))) return 1;
  const { deadLettered, skipped, deleted } = result.counts;
  return deadLettered + skipped + deleted > 0 ? 3 : 0;
}

function finished(result: RunResult): boolean {
  const { done, total } = recordsDone(result.bounds, result.positions);
  return total !== undefined && done >= total;
}

function runName(plan: RunPlan): string {
  if (plan.dryRun) return "Dry run";
  return plan.start === undefined ? "Run to the end" : "Replay";
}

/**
 * The summary, one line a string, each within 80 columns (but for long topic, group or offset lists);
 * colour only when `colour`.
 */
export function summaryLines(result: RunResult, options: { colour: boolean }): string[] {
  const { plan, counts } = result;
  const on = options.colour;
  const { done, total } = recordsDone(result.bounds, result.positions);
  const code = exitCodeOf(result);
  const ended = result.failed
    ? "failed"
    : plan.untilEnd
    ? (finished(result) ? "finished" : "stopped before the end")
    : "stopped";
  const rate = formatRate(result.elapsedMs > 0 ? (done * 1_000) / result.elapsedMs : undefined);
  const lines = [`${runName(plan)} of ${result.topic} ${ended} in ${formatElapsed(result.elapsedMs)}`];
  const row = (label: string, n: number, note = "") =>
    lines.push(`  ${label.padEnd(15)}${formatCount(n).padStart(10)}${note === "" ? "" : `  ${note}`}`);
  row("records", done, `${total === undefined ? "" : `of ${formatCount(total)}, `}at ${rate}`);
  if (plan.dryRun) {
    row("would send", counts.delivered);
    row(
      "would not send",
      counts.skipped,
      counts.skipped > 0 ? "invalid records and tombstones: see the log" : "",
    );
    if (result.largest) {
      lines.push(
        `  largest value  ${formatCount(result.largest.bytes).padStart(10)} bytes at ${result.largest.at}`,
      );
    }
  } else {
    row("delivered", counts.delivered);
    row(
      "dead-lettered",
      counts.deadLettered,
      result.deadLetterTopic ? `to topic ${result.deadLetterTopic}` : "",
    );
    row("skipped", counts.skipped, counts.skipped > 0 ? "rejected or tombstones: see the log" : "");
    row("retries", counts.retries);
  }
  if (counts.deleted > 0) row("deleted", counts.deleted, "by retention before delivery: lost, see the log");
  if (counts.unfinished > 0) {
    row("unfinished", counts.unfinished, "not committed: delivered again by the next run");
  }
  lines.push(`  dead letters   ${deadLetters(result)}`);
  lines.push(
    `  partition  ${"start".padStart(12)}  ${"reached".padStart(12)}${
      result.bounds.end ? `  ${"end".padStart(12)}` : ""
    }`,
  );
  for (const [partition, start] of result.bounds.start) {
    const end = result.bounds.end?.get(partition);
    const reached = result.positions.get(partition) ?? start;
    lines.push(
      `  ${String(partition).padStart(9)}  ${String(start).padStart(12)}  ${String(reached).padStart(12)}` +
        (end === undefined ? "" : `  ${String(end).padStart(12)}`),
    );
  }
  lines.push(`  group          ${plan.group}${result.group === undefined ? "" : ` (${result.group})`}`);
  // A replay's group goes at its end, so it goes on with --from-offsets; a run in --group resumes by itself.
  if (plan.start !== undefined && plan.untilEnd && !finished(result) && !plan.dryRun) {
    lines.push(`  to go on from here: --from-offsets ${formatOffsets(result.positions)}`);
  }
  const [text, colour] = verdict(result, code);
  lines.push(paint(text, colour, on));
  return lines;
}

function verdict(result: RunResult, code: 0 | 1 | 3): [string, Colour] {
  const dry = result.plan.dryRun;
  if (code === 1) {
    return [`exit 1: ${result.failed ? "eventsink failed (see the log)" : "stopped before the end"}`, "red"];
  }
  if (code === 3) {
    const { deadLettered, skipped, deleted } = result.counts;
    const others = deadLettered + skipped > 0 ? "dead-lettered or skipped" : undefined;
    const what = dry
      ? "would not be sent"
      : deleted > 0
      ? `were deleted (retention) before delivery${others ? `, others ${others}` : ""}`
      : `were ${others}`;
    return [`exit 3: some records ${what}`, "yellow"];
  }
  return [`exit 0: every record ${dry ? "would be sent" : "was delivered"}`, "green"];
}

function deadLetters(result: RunResult): string {
  if (result.plan.dryRun) return "none written (dry run)";
  if (result.deadLetterTopic) return `topic ${result.deadLetterTopic}`;
  return "none written (no --dead-letter-topic)";
}

/** The summary as log fields, for the log line that ends a run by hand. */
export function summaryFields(result: RunResult): LogFields {
  const { done, total } = recordsDone(result.bounds, result.positions);
  return {
    group: result.plan.group,
    groupAtEnd: result.group,
    durationMs: Math.round(result.elapsedMs),
    done,
    total,
    ...result.counts,
    start: formatOffsets(result.bounds.start),
    reached: formatOffsets(result.positions),
    end: result.bounds.end === undefined ? undefined : formatOffsets(result.bounds.end),
    deadLetterTopic: result.deadLetterTopic,
    exitCode: exitCodeOf(result),
  };
}
