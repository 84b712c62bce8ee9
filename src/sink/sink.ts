import type { PartitionStarts } from "../kafka/admin.ts";
import type { Batch, Consumer, ConsumerEvents } from "../kafka/consumer.ts";
import type { Deliver, DeliveryResult } from "../delivery/deliver.ts";
import type { Logger } from "../log.ts";
import type { SourceRecord } from "../record.ts";
import { settledWithin } from "../async.ts";
import { COMMIT_INTERVAL_MS } from "../settle/commits.ts";
import type { Settle } from "../settle/settle.ts";
import { createLane, type Lane } from "./lane.ts";
import { createLimiter } from "./limiter.ts";
import type { Ordering } from "./ordering.ts";
import {
  countEnding,
  type PartitionStatus,
  retriesOf,
  type Sink,
  type SinkPhase,
  unread,
  zeroCounts,
} from "./status.ts";

/**
 * How long a stop waits to leave the group, after the grace period. With the final commits' wait and
 * closing the clients this makes the margin the README gives beyond --shutdown-grace (10 s).
 */
export const LEAVE_MS = 5_000;
/** How long abandoned lanes get for their final commits. */
const COMMIT_WAIT_MS = 2_000;

/** The sink's settings (see `--ordering`, `--max-in-flight`, `--shutdown-grace`). */
export interface SinkOptions {
  topic: string;
  ordering: Ordering;
  maxInFlight: number;
  shutdownGraceMs: number;
}

/** What the sink drives: the consumer, where each partition starts, delivery, and how records end. */
export interface SinkDeps {
  consumer: Consumer;
  partitionStarts: PartitionStarts;
  deliver: Deliver;
  settle: Settle;
  log: Logger;
}

/**
 * The loop: KafkaJS fetches; each partition's batch is taken over by that partition's lane, and KafkaJS
 * fetches on at once. A lane holding two batches pauses its partition until it has settled one, so that
 * a partition held up by retries holds up nothing else, memory stays bounded, and KafkaJS goes on
 * heartbeating. Offsets are committed up to the first record not yet accounted for.
 */
export function createSink(options: SinkOptions, deps: SinkDeps): Sink {
  const { consumer, log } = deps;
  const lanes = new Map<number, Lane>();
  const limiter = createLimiter(options.maxInFlight);
  const counts = zeroCounts();
  let stopping = false;
  let phase: SinkPhase = "starting";
  let exitCode: 0 | 1 = 0;
  let assigned: number[] = [];
  const stopRequested = Promise.withResolvers<void>();
  /** Aborted by a stop: ends the waits before and between delivery attempts, not the POSTs in flight. */
  const waits = new AbortController();
  const abandonNow = Promise.withResolvers<void>();

  const { topic, ordering } = options;
  const deleted = (records: number) => (counts.deleted += records);
  const laneOptions = { topic, ordering, limiter, handle, stopping: () => stopping, fail, deleted, log };

  const laneFor = (partition: number): Lane =>
    lanes.get(partition) ?? lanes.set(partition, createLane({ ...laneOptions, partition })).get(partition)!;

  /** Delivers one record and counts how it ended; false when it stays unaccounted. */
  async function handle(record: SourceRecord, signal: AbortSignal): Promise<boolean> {
    counts.consumed++;
    counts.unfinished++; // until accounted below
    const result = await deliverUnlessStopped(deps.deliver, record, signal, waits.signal);
    if (result === undefined) return false;
    counts.retries += retriesOf(result);
    const ending = await deps.settle(record, result, signal);
    if (ending === "held") return halt();
    countEnding(counts, ending);
    return true;
  }

  function onAssigned(topic: string, partitions: number[]): void {
    assigned = [...partitions].sort((a, b) => a - b);
    takeAssignment({ topic, partitions }, { lanes, laneFor, partitionStarts: deps.partitionStarts, log });
  }

  function fail(message: string, error: unknown): void {
    log.error(message, { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    halt();
  }

  /** Stops with exit code 1; false, so that no further record of the batch starts. */
  function halt(): false {
    exitCode = 1;
    stop();
    return false;
  }

  function stop(options?: { now: boolean }): void {
    if (options?.now) {
      exitCode = 1;
      abandonNow.resolve();
    }
    if (stopping) return;
    stopping = true;
    phase = "stopping";
    waits.abort(new Error("eventsink is stopping"));
    stopRequested.resolve();
  }

  const events: ConsumerEvents = {
    onBatch: (batch: Batch) => {
      if (!stopping) laneFor(batch.partition).take(batch);
    },
    onAssigned,
    onCrash: (error, restart) => {
      if (!stopping) onCrash(error, restart, { log, fail });
    },
    onOffsetOutOfRange: (_topic, partition) => laneFor(partition).offsetOutOfRange(),
  };

  return {
    async run() {
      try {
        await startUnlessStopped(consumer, events, stopRequested.promise, log);
      } catch (error) {
        stopping = true;
        phase = "stopped";
        throw error;
      }
      if (!stopping) phase = "consuming";
      const ticker = setInterval(() => lanes.forEach((lane) => lane.tick()), COMMIT_INTERVAL_MS);
      await stopRequested.promise;
      consumer.pauseAll();
      await drain([...lanes.values()], { graceMs: options.shutdownGraceMs, now: abandonNow.promise }, log);
      clearInterval(ticker);
      await leave(consumer, log);
      log.info("Stopped", { ...counts });
      phase = "stopped";
      return { exitCode, counts };
    },
    stop,
    skipDeleted: (partition, offset, records) => laneFor(partition).skipDeleted(offset, records),
    status: () => ({ phase, counts: { ...counts }, partitions: partitionStatus(assigned, lanes) }),
  };
}

/** Waits for the lanes, within the grace period (or until `now`); then abandons what is still in flight. */
async function drain(
  lanes: Lane[],
  until: { graceMs: number; now: Promise<void> },
  log: Logger,
): Promise<void> {
  const idle = () => Promise.all(lanes.map((lane) => lane.idle()));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const graceOver = new Promise<"grace">((resolve) => {
    timer = setTimeout(() => resolve("grace"), until.graceMs);
  });
  const cut = until.now.then(() => "now" as const);
  const finished = await Promise.race([idle().then(() => "done" as const), graceOver, cut]);
  clearTimeout(timer);
  if (finished !== "done") {
    log.warn(
      `Deliveries still in flight ${
        finished === "grace" ? "after the grace period" : "at the second signal"
      } ` +
        "are abandoned; they stay uncommitted and are delivered again on the next start",
    );
    for (const lane of lanes) lane.abandon(new Error("shutdown grace period over"));
    // Their final commits may wait for a broker that is away: they get a moment, not the whole retry.
    if (!(await settledWithin(idle(), COMMIT_WAIT_MS))) log.warn("Final commits did not finish in time");
  }
}

/** Delivers; undefined when a stop ended a wait before or between attempts (unaccounted, delivered again). */
function deliverUnlessStopped(
  deliver: Deliver,
  record: SourceRecord,
  signal: AbortSignal,
  waits: AbortSignal,
): Promise<DeliveryResult | undefined> {
  return deliver(record, signal, waits).catch((error) => {
    if (error === waits.reason) return undefined;
    throw error;
  });
}

/**
 * Starts the consumer. A stop during start-up (a join waiting out a dead member's session) does not wait
 * for it; when it cannot start, it leaves the group and rejects.
 */
async function startUnlessStopped(
  consumer: Consumer,
  events: ConsumerEvents,
  stopRequested: Promise<void>,
  log: Logger,
): Promise<void> {
  const started = consumer.start(events);
  try {
    await Promise.race([started, stopRequested]);
  } catch (error) {
    await leave(consumer, log);
    throw error;
  }
  started.catch(() => {}); // stopped first: its failure no longer matters
}

function partitionStatus(assigned: number[], lanes: Map<number, Lane>): PartitionStatus[] {
  return assigned.map((partition) => lanes.get(partition)?.status() ?? unread(partition));
}

/** Leaves the group, in a bounded time: a broker that is away or a join in progress must not hold the stop. */
async function leave(consumer: Consumer, log: Logger): Promise<void> {
  const left = consumer.stop().catch((error) =>
    log.warn("Leaving the group failed", { error: error.message })
  );
  if (!(await settledWithin(left, LEAVE_MS))) {
    log.warn(
      `Leaving the group did not finish within ${LEAVE_MS / 1000} s; the group moves this process's ` +
        "partitions when its session times out",
    );
  }
}

/** The group's new assignment: lanes no longer owned are revoked, and the others learn where they start. */
function takeAssignment(
  { topic, partitions }: { topic: string; partitions: number[] },
  to: {
    lanes: Map<number, Lane>;
    laneFor: (partition: number) => Lane;
    partitionStarts: PartitionStarts;
    log: Logger;
  },
): void {
  const { lanes, laneFor, log } = to;
  revokeUnowned(lanes, partitions);
  log.info("Partitions assigned", { topic, partitions: partitions.join(",") || "(none)" });
  if (partitions.length === 0) return;
  to.partitionStarts(topic, partitions).then((starts) => {
    for (const start of starts) laneFor(start.partition).assigned(start);
  }).catch((error) => log.debug("Cannot read partition offsets", { error: (error as Error).message }));
}

/** The lanes of partitions this process no longer owns are revoked. */
function revokeUnowned(lanes: Map<number, Lane>, partitions: number[]): void {
  const owned = new Set(partitions);
  for (const [partition, lane] of lanes) {
    if (!owned.has(partition)) lane.revoke(new Error(`partition ${partition} was revoked`));
  }
}

/** KafkaJS's consumer crashed: a restart is only a warning, else the sink fails. */
function onCrash(
  error: Error,
  restart: boolean,
  to: { log: Logger; fail: (message: string, error: Error) => void },
) {
  // Deliveries in flight go on: the rejoin (onAssigned) revokes what this process no longer owns.
  if (restart) {
    to.log.warn("Kafka consumer failed; it restarts and rejoins the group by itself", {
      error: error.message,
    });
  } else to.fail("Kafka consumer failed and cannot restart", error);
}
