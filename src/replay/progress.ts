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
  /**
   * A first SIGINT or SIGTERM came: the run finishes the deliveries in flight, and a second one exits at
   * once. Undefined: not stopping.
   */
  stopping?: boolean;
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
      // Without a status, it failed before an answer (TLS, say): the log line says what to check.
      return outcome.status === undefined
        ? "Cannot connect to the EventStore as configured (see the log)"
        : `EventStore refuses requests (${outcome.status}): check --eventstore-url and credentials`;
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

/** The note after a first SIGINT or SIGTERM, while deliveries in flight finish: a second one exits at once. */
export const STOPPING_NOTE = "stopping… (Ctrl-C again to quit)";

const BAR_WIDTH = 20;

/** A part of the progress line; when the line is too wide, the part of the lowest `keep` goes first. */
interface Part {
  /** The figures, the counts (after a `|`), or a note (last; never dropped, but cut when nothing else is left). */
  group: "head" | "counts" | "note";
  plain: string;
  shown: string;
  keep: number;
}

/**
 * The one-line progress display, at most `width` columns: least important parts are dropped first
 * (counts, then the bar, the rate, the records and the ETA); the percentage and the notes (stopping,
 * the EventStore failing) are kept: they are what a person must see.
 */
export function formatProgressLine(progress: Progress, options: { colour: boolean; width: number }): string {
  const parts = progressParts(progress, options.colour);
  for (;;) {
    const droppable = parts.filter((part) => part.keep < Infinity);
    if (droppable.length === 0 || partsText(parts, "plain").length <= options.width) break;
    // The least kept goes, the last of equals.
    const least = Math.min(...droppable.map((part) => part.keep));
    parts.splice(parts.findLastIndex((part) => part.keep === least), 1);
  }
  const plain = partsText(parts, "plain");
  return plain.length <= options.width ? partsText(parts, "shown") : `${plain.slice(0, options.width - 1)}…`;
}

function progressParts(progress: Progress, on: boolean): Part[] {
  const { done, total, counts } = progress;
  const parts: Part[] = [];
  const head = (plain: string, keep: number, shown = plain) =>
    parts.push({ group: "head", plain, shown, keep });
  if (total !== undefined) {
    const filled = total === 0 ? BAR_WIDTH : Math.floor((Math.min(done, total) / total) * BAR_WIDTH);
    head(`[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`, 5);
    const percent = formatPercent(done, total).padStart(6);
    head(percent, Infinity, paint(percent, "bold", on));
    head(`${formatCount(done)}/${formatCount(total)}`, 7);
  } else {
    head(`${formatCount(done)} records`, Infinity);
  }
  head(formatRate(progress.perSecond), 6);
  // A run that is stopping does not reach its end: no time left to show.
  if (total !== undefined && !progress.stopping) {
    const eta = etaMs(progress);
    head(`ETA ${eta === undefined ? "--" : formatElapsed(eta)}`, 8);
  }
  // Counts at zero go first, then those of lower `keep`.
  const count = (label: string, n: number, keep: number, colour?: Colour) => {
    const plain = `${label} ${formatCount(n)}`;
    const shown = colour && n > 0 ? paint(plain, colour, on) : plain;
    parts.push({ group: "counts", plain, shown, keep: n === 0 ? 0 : keep });
  };
  if (progress.dryRun) {
    count("would send", counts.delivered, 2);
    count("would not send", counts.skipped, 1, "yellow");
  } else {
    count("delivered", counts.delivered, 3);
    count("dead-lettered", counts.deadLettered, 2, "yellow");
    count("skipped", counts.skipped, 1, "yellow");
    count("retrying", progress.retrying, 4, "yellow");
  }
  // Records lost to retention are shown as soon as there are any, and kept longest.
  if (counts.deleted > 0) count("deleted", counts.deleted, 5, "red");
  const note = (plain: string, colour: Colour) =>
    parts.push({ group: "note", plain, shown: paint(plain, colour, on), keep: Infinity });
  if (progress.stopping) note(STOPPING_NOTE, "yellow");
  if (progress.failing !== undefined) note(`! ${progress.failing}`, "red");
  return parts;
}

/** The line of `parts`: figures, then `|` and the counts, then the notes. */
function partsText(parts: Part[], form: "plain" | "shown"): string {
  const of = (group: Part["group"]) => parts.filter((part) => part.group === group).map((part) => part[form]);
  const counts = of("counts");
  return [
    [of("head").join("  "), ...(counts.length > 0 ? [counts.join("  ")] : [])].join("  |  "),
    ...of("note"),
  ].join("  ");
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
    deleted: counts.deleted > 0 ? counts.deleted : undefined,
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
