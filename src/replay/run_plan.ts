import type { StartSpec } from "./start_position.ts";

/** A run by hand: where it starts, whether it ends by itself, what it reports (see planRun). */
export interface ReplayOptions {
  /** Where a replay starts (any `--from-*`); undefined: the group's committed offsets, as the service. */
  from: StartSpec | undefined;
  untilEnd: boolean;
  keepGroup: boolean;
  dryRun: boolean;
  /** No progress display. */
  quiet: boolean;
  /** How often a progress line is logged when stderr is not a terminal. */
  progressIntervalMs: number;
}

/** The options planning reads. */
export interface PlanOptions {
  /** The service's consumer group (--group). */
  group: string;
  replay: ReplayOptions;
}

/** What kind of run the options ask for: the service, or a run by hand (a replay, a catch-up, a dry run). */
export interface RunPlan {
  /** The consumer group the run joins. */
  group: string;
  /** A run by hand shows progress, ends with a summary and exits 0, 3 or 1; the service does neither. */
  byHand: boolean;
  /**
   * Where a run in a group of its own starts; undefined when the run joins `--group` itself and resumes
   * from its committed offsets (the service, and `--until-end` alone).
   */
  start: StartSpec | undefined;
  /** Stop once every partition is accounted for up to the end offsets noted at start. */
  untilEnd: boolean;
  dryRun: boolean;
  /** Keep the run's own group at the end (only a run with `start` has one). */
  keepGroup: boolean;
}

/**
 * Plans the run. Any `--from-*` or `--dry-run` runs in a fresh group of its own, `<group>.replay.<time>`
 * or `<group>.dry-run.<time>`, so that the service's group (its members and committed offsets) is not
 * touched; a dry run starts where the service group stands and always ends at the end.
 */
export function planRun(config: PlanOptions, now: Date): RunPlan {
  const { from, dryRun, untilEnd, keepGroup } = config.replay;
  const start: StartSpec | undefined = from ?? (dryRun ? { kind: "committed" } : undefined);
  const group = start === undefined
    ? config.group
    : `${config.group}.${dryRun ? "dry-run" : "replay"}.${compactTime(now)}`;
  return {
    group,
    byHand: start !== undefined || untilEnd,
    start,
    untilEnd: untilEnd || dryRun,
    dryRun,
    keepGroup,
  };
}

/** `20261128T101500Z`: a UTC time that fits in a group name. */
function compactTime(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}
