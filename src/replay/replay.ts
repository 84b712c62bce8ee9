/**
 * A run by hand around the sink: prepares the replay's own group at its start offsets, notes the end
 * offsets, watches progress until every partition reached its end, removes the group, and ends with a
 * summary and an exit code.
 */
import { boundSource } from "./bounded_source.ts";
import { createDeletionWatch } from "./deleted_to_end.ts";
import type { Display } from "./display.ts";
import type { OffsetAdmin, PartitionRange } from "../kafka/admin.ts";
import type { Consumer } from "../kafka/consumer.ts";
import type { Logger } from "../log.ts";
import type { Outcome } from "../delivery/outcome.ts";
import {
  advancePositions,
  type Bounds,
  createRateMeter,
  failingNote,
  type Progress,
  reachedEnd,
  recordsDone,
} from "./progress.ts";
import type { SourceRecord } from "../record.ts";
import type { RunPlan } from "./run_plan.ts";
import type { Sink } from "../sink/status.ts";
import { formatOffsets, resolveStart, type StartFacts } from "./start_position.ts";
import { exitCodeOf, type RunResult, summaryFields, summaryLines } from "./summary.ts";

/** How often the run checks whether it reached the end. */
const WATCH_MS = 200;
/** The rate shown is over this last stretch of time. */
const RATE_WINDOW_MS = 10_000;

/** What a run by hand needs besides the sink. */
export interface ReplayDeps {
  /** The topic and the service's group (whose committed offsets a dry run starts from). */
  topic: string;
  serviceGroup: string;
  deadLetterTopic: string | undefined;
  admin: OffsetAdmin;
  display: Display;
  log: Logger;
  /** Prints the summary (to stdout); `colour` says whether it may be coloured. */
  print: (text: string) => void;
  colour: boolean;
  now: () => number;
  /** A dry run's largest record value. */
  largest?: () => { bytes: number; at: string } | undefined;
}

/** Creates a run by hand; `wrap` the consumer before the sink is built, then `run` the sink. */
export function createReplay(plan: RunPlan, deps: ReplayDeps) {
  const { admin, log } = deps;
  let bounds: Bounds | undefined;
  const positions = new Map<number, number>();
  const retrying = new Set<string>();
  let lastFailure: string | undefined;
  let stopping = false;
  const deletions = createDeletionWatch(admin, deps.topic, log);

  function snapshot(
    sink: Sink,
    known: Bounds,
    clock: { startedAt: number; meter: ReturnType<typeof createRateMeter> },
  ): Progress {
    const { startedAt, meter } = clock;
    const status = sink.status();
    advancePositions(positions, status);
    const { done, total } = recordsDone(known, positions);
    const at = deps.now();
    meter.add(at, done);
    return {
      elapsedMs: at - startedAt,
      done,
      total,
      perSecond: meter.perSecond(),
      counts: status.counts,
      retrying: retrying.size,
      failing: retrying.size > 0 ? lastFailure : undefined,
      dryRun: plan.dryRun,
      stopping,
    };
  }

  async function runPrepared(sink: Sink): Promise<number> {
    // The summary's time counts from the start, preparing the group included.
    const startedAt = deps.now();
    const known = await prepare(plan, deps);
    bounds = known;
    for (const [partition, offset] of known.start) positions.set(partition, offset);

    const meter = createRateMeter(RATE_WINDOW_MS);
    const watcher = setInterval(() => {
      const status = sink.status();
      advancePositions(positions, status);
      deletions.check(known, positions, status, sink.skipDeleted);
      if (reachedEnd(known, positions)) sink.stop();
    }, WATCH_MS);
    deps.display.start(() => snapshot(sink, known, { startedAt, meter }), log);
    let ended: Awaited<ReturnType<Sink["run"]>> | undefined;
    let failure: unknown;
    try {
      ended = await sink.run();
    } catch (error) {
      failure = error;
    } finally {
      clearInterval(watcher);
      deps.display.finish();
    }
    const group = await removeOwnGroup(plan, deps);
    if (ended === undefined) throw failure;
    advancePositions(positions, sink.status());
    const result: RunResult = {
      plan,
      topic: deps.topic,
      elapsedMs: deps.now() - startedAt,
      counts: ended.counts,
      bounds: known,
      positions,
      failed: ended.exitCode !== 0,
      deadLetterTopic: plan.dryRun ? undefined : deps.deadLetterTopic,
      group,
      largest: deps.largest?.(),
    };
    log.info("Summary", summaryFields(result));
    deps.print(summaryLines(result, { colour: deps.colour }).join("\n"));
    return exitCodeOf(result);
  }

  return {
    /** The consumer as the run needs it: cut at the end offsets, and committing nothing in a dry run. */
    wrap: (consumer: Consumer): Consumer =>
      boundSource(consumer, { end: () => bounds?.end, commit: !plan.dryRun, moved: deletions.moved }),
    /** Hears every delivery attempt: which records are being retried, and why the EventStore fails. */
    observe(outcome: Outcome, record: SourceRecord): void {
      lastFailure = noteRetrying(retrying, outcome, record) ?? lastFailure;
    },
    /** A first signal: the progress line says the run is stopping and that a second one quits now. */
    stopping: () => void (stopping = true),
    /** Runs the sink to the end (or until stopped); resolves with the exit code. */
    async run(sink: Sink): Promise<number> {
      try {
        await admin.connect();
        return await runPrepared(sink);
      } finally {
        await admin.close().catch(() => {});
      }
    },
  };
}

/** Tracks which records are being retried; returns why the EventStore fails when this one failed. */
function noteRetrying(retrying: Set<string>, outcome: Outcome, record: SourceRecord): string | undefined {
  const key = `${record.partition}@${record.offset}`;
  const note = failingNote(outcome);
  if (note === undefined) retrying.delete(key);
  else retrying.add(key);
  return note;
}

/** Notes the start and end offsets and, for a group of its own, commits the start offsets in it. */
async function prepare(plan: RunPlan, deps: ReplayDeps): Promise<Bounds> {
  const { admin } = deps;
  const ranges = await admin.ranges(deps.topic);
  const start = await startOffsets(plan, deps, ranges);
  const known: Bounds = {
    start,
    end: plan.untilEnd ? new Map(ranges.map((r) => [r.partition, r.high])) : undefined,
  };
  // The start offsets are committed in the fresh group before anyone joins it (KafkaJS's setOffsets
  // needs an empty group): the consumer then starts there, and so does a rejoin after a rebalance.
  if (plan.start !== undefined) {
    // Named by the second it started: a replay started in the same second must not share its group.
    if ((await admin.committed(plan.group, deps.topic)).size > 0) {
      throw new Error(`consumer group ${plan.group} is in use by another replay; start again`);
    }
    await admin.setCommitted(plan.group, deps.topic, start);
  }
  deps.log.info(plan.start === undefined ? "Running to the end" : "Replay group prepared", {
    group: plan.group,
    start: formatOffsets(start),
    end: known.end && formatOffsets(known.end),
  });
  return known;
}

async function startOffsets(
  plan: RunPlan,
  deps: ReplayDeps,
  ranges: PartitionRange[],
): Promise<Map<number, number>> {
  const { admin } = deps;
  const spec = plan.start ?? { kind: "committed" };
  const facts: StartFacts = { ranges };
  if (spec.kind === "committed") facts.committed = await admin.committed(deps.serviceGroup, deps.topic);
  if (spec.kind === "timestamp") facts.atTimestamp = await admin.offsetsAt(deps.topic, spec.ms);
  return resolveStart(spec, facts);
}

/** Removes the run's own group unless it is to be kept; says what became of it. */
async function removeOwnGroup(plan: RunPlan, deps: ReplayDeps): Promise<RunResult["group"]> {
  if (plan.start === undefined) return undefined;
  if (plan.keepGroup) return "kept";
  try {
    await deps.admin.deleteGroup(plan.group);
    deps.log.info("Removed the replay's consumer group", { group: plan.group });
    return "removed";
  } catch (error) {
    deps.log.warn(
      `Cannot remove the consumer group ${plan.group}; remove it with kafka-consumer-groups --delete --group ` +
        plan.group,
      { error: (error as Error).message },
    );
    return "not removed";
  }
}
