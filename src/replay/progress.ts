/**
 * How far a run by hand has come: records done out of the total, the rate, the time left, and the
 * progress line and log fields that show it. Pure: the sink's status and the time are passed in.
 */
import type { LogFields } from "../log.ts";
import type { Outcome } from "../delivery/outcome.ts";
import type { Counts, SinkStatus } from "../sink/status.ts";

/** The offsets a run started at, and for a bounded run (`--until-end`) the end offsets noted at start. */
export interface Bounds {
  start: ReadonlyMap<number, number>;
  end: ReadonlyMap<number, number> | undefined;
}

/** A snapshot of a run's progress. */
export interface Progress {
  elapsedMs: number;
  /** Records accounted for since the start (by offset, so repeats after a rebalance are not counted twice). */
  done: number;
  /** Records from the start to the end offsets; undefined for a run without an end. */
  total: number | undefined;
  /** Records a second lately; undefined until measured. */
  perSecond: number | undefined;
  counts: Counts;
  /** Records whose last delivery attempt failed and that are being retried. */
  retrying: number;
  /** Why the EventStore is failing, while it is. */
  failing: string | undefined;
  dryRun: boolean;
}

/**
 * Moves each partition's position (the first offset not yet accounted for) forward to what the sink
 * reports; positions never move back, so a revoked and reassigned partition keeps its progress.
 */
export function advancePositions(positions: Map<number, number>, status: SinkStatus): void {
  for (const { partition, next, committed } of status.partitions) {
    const at = next ?? committed;
    const known = positions.get(partition);
    if (at !== undefined && known !== undefined && at > known) positions.set(partition, at);
  }
}

/** Records done and the total, from the positions of the partitions the run started with. */
export function recordsDone(
  bounds: Bounds,
  positions: ReadonlyMap<number, number>,
): { done: number; total: number | undefined } {
  let done = 0;
  let total = 0;
  for (const [partition, start] of bounds.start) {
    const end = bounds.end?.get(partition) ?? Infinity;
    done += Math.max(0, Math.min(positions.get(partition) ?? start, end) - start);
    total += Math.max(0, end - start);
  }
  return { done, total: bounds.end === undefined ? undefined : total };
}

/** Whether every partition is accounted for up to its end offset (never, for a run without an end). */
export function reachedEnd(bounds: Bounds, positions: ReadonlyMap<number, number>): boolean {
  if (bounds.end === undefined) return false;
  return [...bounds.end].every(([partition, end]) => (positions.get(partition) ?? -1) >= end);
}

/** A rate over the last `windowMs`: records a second between the oldest sample in the window and now. */
export function createRateMeter(windowMs: number) {
  const samples: Array<{ atMs: number; done: number }> = [];
  return {
    add(atMs: number, done: number): void {
      samples.push({ atMs, done });
      // Keep one sample older than the window, so the rate always spans the whole window.
      while (samples.length > 2 && samples[1]!.atMs <= atMs - windowMs) samples.shift();
    },
    perSecond(): number | undefined {
      const first = samples[0];
      const last = samples.at(-1);
      if (!first || !last || last.atMs - first.atMs < 500) return undefined;
      return ((last.done - first.done) * 1_000) / (last.atMs - first.atMs);
    },
  };
}

/** Time left at the current rate; undefined while the rate is unknown or zero. */
export function etaMs(progress: Pick<Progress, "done" | "total" | "perSecond">): number | undefined {
  const { done, total, perSecond } = progress;
  if (total === undefined) return undefined;
  if (done >= total) return 0;
  if (perSecond === undefined || perSecond <= 0) return undefined;
  return ((total - done) / perSecond) * 1_000;
}

/** What the progress shows about the EventStore after an attempt: why it fails, or undefined when well. */
export function failingNote(outcome: Outcome): string | undefined {
  switch (outcome.kind) {
    case "delivered":
    case "rejected":
      return undefined;
    case "retry":
      return outcome.status === undefined
        ? "EventStore unreachable or not answering, retrying"
        : `EventStore failing (${outcome.status}), retrying`;
    case "config-fault":
      return `EventStore refuses requests (${outcome.status}): check --eventstore-url and credentials`;
  }
}

/** `42s`, `3m 05s`, `2h 05m`. */
export function formatElapsed(ms: number): string {
  const seconds = Math.round(ms / 1_000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3_600) return `${Math.floor(seconds / 60)}m ${pad2(seconds % 60)}s`;
  return `${Math.floor(seconds / 3_600)}h ${pad2(Math.floor(seconds / 60) % 60)}m`;
}

/** `12,345`. */
export function formatCount(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** `1,234/s`, or `0.5/s` below ten a second. */
export function formatRate(perSecond: number | undefined): string {
  if (perSecond === undefined) return "--/s";
  return perSecond < 10 ? `${perSecond.toFixed(1)}/s` : `${formatCount(perSecond)}/s`;
}

/** `24.7%`; 100% only when all is done. */
export function formatPercent(done: number, total: number): string {
  if (total === 0 || done >= total) return "100%";
  return `${Math.min(99.9, Math.floor((done / total) * 1_000) / 10).toFixed(1)}%`;
}

const SGR = { bold: "\x1b[1m", green: "\x1b[32m", yellow: "\x1b[33m", red: "\x1b[31m", reset: "\x1b[0m" };
/** A terminal colour; `paint` leaves text plain when colour is off (NO_COLOR, or not a terminal). */
export type Colour = keyof typeof SGR;

/** Wraps text in a colour when `on`. */
export function paint(text: string, colour: Colour, on: boolean): string {
  return on ? `${SGR[colour]}${text}${SGR.reset}` : text;
}

const BAR_WIDTH = 20;

/**
 * The one-line progress display, at most `width` columns: least important parts are dropped first
 * (the failing note is kept: it is what a person must see).
 */
export function formatProgressLine(progress: Progress, options: { colour: boolean; width: number }): string {
  const { done, total, counts } = progress;
  const on = options.colour;
  const head: string[] = [];
  if (total !== undefined) {
    const filled = total === 0 ? BAR_WIDTH : Math.floor((Math.min(done, total) / total) * BAR_WIDTH);
    head.push(`[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`);
    head.push(paint(formatPercent(done, total).padStart(6), "bold", on));
    head.push(`${formatCount(done)}/${formatCount(total)}`);
  } else {
    head.push(`${formatCount(done)} records`);
  }
  head.push(formatRate(progress.perSecond));
  if (total !== undefined) {
    const eta = etaMs(progress);
    head.push(`ETA ${eta === undefined ? "--" : formatElapsed(eta)}`);
  }
  // `keep`: when the line is too wide, counts at zero go first, then those of lower `keep`.
  const parts: Array<{ plain: string; shown: string; keep: number }> = [];
  const add = (label: string, n: number, keep: number, colour?: Colour) => {
    const plain = `${label} ${formatCount(n)}`;
    parts.push({
      plain,
      shown: colour && n > 0 ? paint(plain, colour, on) : plain,
      keep: n === 0 ? 0 : keep,
    });
  };
  if (progress.dryRun) {
    add("would send", counts.delivered, 2);
    add("would not send", counts.skipped, 1, "yellow");
  } else {
    add("delivered", counts.delivered, 3);
    add("dead-lettered", counts.deadLettered, 2, "yellow");
    add("skipped", counts.skipped, 1, "yellow");
    add("retrying", progress.retrying, 4, "yellow");
  }
  const note = progress.failing;
  const plainHead = stripSgr(head.join("  "));
  const noteWidth = note === undefined ? 0 : note.length + 3;
  // Drop counts until the line fits, least kept first (the last of equals); then cut what is left.
  while (parts.length > 0 && lineWidth(plainHead, parts, noteWidth) > options.width) {
    const least = Math.min(...parts.map((part) => part.keep));
    parts.splice(parts.findLastIndex((part) => part.keep === least), 1);
  }
  let line = [head.join("  "), ...(parts.length > 0 ? [parts.map((p) => p.shown).join("  ")] : [])]
    .join("  |  ");
  if (note !== undefined) line += `  ${paint(`! ${note}`, "red", on)}`;
  return stripSgr(line).length <= options.width ? line : stripSgr(line).slice(0, Math.max(0, options.width));
}

function lineWidth(head: string, parts: Array<{ plain: string }>, noteWidth: number): number {
  const counts = parts.map((p) => p.plain).join("  ");
  return head.length + (parts.length > 0 ? 5 + counts.length : 0) + noteWidth;
}

/** The progress as log fields, for the plain progress line when stderr is not a terminal. */
export function progressFields(progress: Progress): LogFields {
  const eta = etaMs(progress);
  const { counts } = progress;
  return {
    done: progress.done,
    total: progress.total,
    percent: progress.total === undefined ? undefined : formatPercent(progress.done, progress.total),
    perSecond: progress.perSecond === undefined ? undefined : Math.round(progress.perSecond),
    eta: eta === undefined ? undefined : formatElapsed(eta),
    ...(progress.dryRun ? { wouldSend: counts.delivered, wouldNotSend: counts.skipped } : {
      delivered: counts.delivered,
      deadLettered: counts.deadLettered,
      skipped: counts.skipped,
      retrying: progress.retrying,
    }),
    eventstore: progress.failing,
  };
}

// deno-lint-ignore no-control-regex
const SGR_PATTERN = /\x1b\[[0-9;]*m/g;

/** The text without colour codes (for measuring and for logs). */
export function stripSgr(text: string): string {
  return text.replace(SGR_PATTERN, "");
}

function pad2(n: number): string {
  return n.toString().padStart(2, "0");
}
