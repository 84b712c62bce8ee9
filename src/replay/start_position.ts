/**
 * Where a replay starts in each partition: the `--from-*` options, parsed, and resolved against the
 * topic's offsets once the broker has told them. Pure.
 */
import type { PartitionRange } from "../kafka/admin.ts";

/** Where a run in a group of its own starts. */
export type StartSpec =
  /** The service group's committed offsets, the earliest record where it committed none (a dry run). */
  | { kind: "committed" }
  /** The earliest record left (`--from-beginning`). */
  | { kind: "beginning" }
  /** The first record whose Kafka timestamp is at or after `ms` (`--from-timestamp`). */
  | { kind: "timestamp"; ms: number }
  /** The given offset of each listed partition; unlisted partitions start at their end (`--from-offsets`). */
  | { kind: "offsets"; offsets: ReadonlyMap<number, number> };

/** What the broker said, as far as the spec needs it. */
export interface StartFacts {
  ranges: readonly PartitionRange[];
  /** The group's committed offsets (for `committed`). */
  committed?: ReadonlyMap<number, number>;
  /** The first offset at or after the timestamp, per partition (for `timestamp`). */
  atTimestamp?: ReadonlyMap<number, number>;
}

/** Parses `--from-offsets`: `partition=offset` pairs separated by commas, e.g. `0=120,1=55`. */
export function parseFromOffsets(text: string, errors: string[]): Map<number, number> | undefined {
  const offsets = new Map<number, number>();
  for (const pair of text.split(",").map((p) => p.trim())) {
    const match = /^(\d{1,9})=(\d{1,15})$/.exec(pair);
    if (!match) {
      errors.push(`--from-offsets entry "${pair}" is not partition=offset (e.g. --from-offsets 0=120,1=55)`);
      return undefined;
    }
    const partition = Number(match[1]);
    if (offsets.has(partition)) {
      errors.push(`--from-offsets names partition ${partition} twice`);
      return undefined;
    }
    offsets.set(partition, Number(match[2]));
  }
  return offsets;
}

/**
 * Parses `--from-timestamp`: an ISO 8601 date and time with `Z` or an offset (a time without a zone
 * would mean whatever the machine's zone is), or a date alone, taken as midnight UTC.
 */
export function parseTimestamp(text: string, errors: string[]): number | undefined {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(text);
  const dateTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(text);
  const ms = dateOnly || dateTime ? Date.parse(dateOnly ? `${text}T00:00:00Z` : text) : NaN;
  if (Number.isNaN(ms)) {
    errors.push(
      `--from-timestamp must be an ISO 8601 time with a zone, e.g. 2026-11-28T10:15:00Z or ` +
        `2026-11-28T11:15:00+01:00, or a date (midnight UTC); got "${text}"`,
    );
    return undefined;
  }
  return ms;
}

/** `0=120,1=55`: the form `--from-offsets` takes, in partition order. */
export function formatOffsets(offsets: ReadonlyMap<number, number>): string {
  return [...offsets].sort(([a], [b]) => a - b).map(([p, o]) => `${p}=${o}`).join(",");
}

/**
 * The start offset of every partition of the topic. Throws, naming the option, when `--from-offsets`
 * names a partition the topic does not have or an offset outside the records it holds.
 */
export function resolveStart(spec: StartSpec, facts: StartFacts): Map<number, number> {
  const start = new Map<number, number>();
  for (const { partition, low, high } of facts.ranges) {
    switch (spec.kind) {
      case "beginning":
        start.set(partition, low);
        break;
      case "committed": {
        const committed = facts.committed?.get(partition);
        // A committed offset below the earliest record left points at deleted records: start at the earliest.
        start.set(
          partition,
          committed === undefined || committed < 0 ? low : Math.min(Math.max(committed, low), high),
        );
        break;
      }
      case "timestamp":
        start.set(partition, Math.min(Math.max(facts.atTimestamp?.get(partition) ?? high, low), high));
        break;
      case "offsets": {
        const offset = spec.offsets.get(partition) ?? high;
        if (offset < low || offset > high) {
          throw new Error(
            `--from-offsets ${partition}=${offset} is outside partition ${partition}'s records ` +
              `(${
                low === high
                  ? `none left; its end is ${high}`
                  : `offsets ${low} to ${high - 1}; its end is ${high}`
              })`,
          );
        }
        start.set(partition, offset);
        break;
      }
    }
  }
  if (spec.kind === "offsets") {
    const missing = [...spec.offsets.keys()].filter((p) => !start.has(p));
    if (missing.length > 0) {
      throw new Error(
        `--from-offsets names partition ${missing.join(", ")}, which the topic does not have ` +
          `(it has ${facts.ranges.length})`,
      );
    }
  }
  return start;
}
