import type { PartitionStarts } from "../kafka/admin.ts";
import type { Batch, Consumer } from "../kafka/consumer.ts";
import type { Deliver } from "../delivery/deliver.ts";
import type { Logger } from "../log.ts";
import type { SourceRecord } from "../record.ts";
import { COMMIT_INTERVAL_MS } from "../settle/commits.ts";
import type { Settle } from "../settle/settle.ts";
import { createLane, type Lane } from "./lane.ts";
import { createLimiter } from "./limiter.ts";
import type { Ordering } from "./ordering.ts";
import { countEnding, retriesOf, type Sink, type SinkPhase, unread, zeroCounts } from "./status.ts";

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

  const { topic, ordering } = options;
  const laneOptions = { topic, ordering, limiter, handle, stopping: () => stopping, fail, log };

  const laneFor = (partition: number): Lane =>
    lanes.get(partition) ?? lanes.set(partition, createLane({ ...laneOptions, partition })).get(partition)!;

  /** Delivers one record and counts how it ended; false when it stays unaccounted. */
  async function handle(record: SourceRecord, signal: AbortSignal): Promise<boolean> {
    counts.consumed++;
    counts.unfinished++; // until accounted below
    const result = await deps.deliver(record, signal);
    counts.retries += retriesOf(result);
    const ending = await deps.settle(record, result, signal);
    if (ending === "held") return halt();
    countEnding(counts, ending);
    return true;
  }

  function onAssigned(topic: string, partitions: number[]): void {
    assigned = [...partitions].sort((a, b) => a - b);
    revokeUnowned(lanes, partitions);
    log.info("Partitions assigned", { topic, partitions: partitions.join(",") || "(none)" });
    if (partitions.length === 0) return;
    deps.partitionStarts(topic, partitions).then((starts) => {
      for (const start of starts) laneFor(start.partition).assigned(start);
    }).catch((error) => log.debug("Cannot read partition offsets", { error: (error as Error).message }));
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

  function stop(): void {
    if (stopping) return;
    stopping = true;
    phase = "stopping";
    stopRequested.resolve();
  }

  return {
    async run() {
      try {
        await consumer.start({
          onBatch: (batch: Batch) => {
            if (!stopping) laneFor(batch.partition).take(batch);
          },
          onAssigned,
          onCrash: (error, restart) => {
            if (!stopping) onCrash(error, restart, { log, fail });
          },
          onOffsetOutOfRange: (_topic, partition) => laneFor(partition).offsetOutOfRange(),
        });
      } catch (error) {
        stopping = true;
        phase = "stopped";
        await consumer.stop().catch(() => {});
        throw error;
      }
      if (!stopping) phase = "consuming";
      const ticker = setInterval(() => lanes.forEach((lane) => lane.tick()), COMMIT_INTERVAL_MS);
      await stopRequested.promise;
      consumer.pauseAll();
      await drain([...lanes.values()], options.shutdownGraceMs, log);
      clearInterval(ticker);
      await consumer.stop().catch((error) => log.warn("Leaving the group failed", { error: error.message }));
      log.info("Stopped", { ...counts });
      phase = "stopped";
      return { exitCode, counts };
    },
    stop,
    status: () => ({
      phase,
      counts: { ...counts },
      partitions: assigned.map((partition) => lanes.get(partition)?.status() ?? unread(partition)),
    }),
  };
}

/** Waits for the lanes, within the grace period; then abandons what is still in flight. */
async function drain(lanes: Lane[], graceMs: number, log: Logger): Promise<void> {
  const idle = () => Promise.all(lanes.map((lane) => lane.idle()));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const graceOver = new Promise<"grace">((resolve) => {
    timer = setTimeout(() => resolve("grace"), graceMs);
  });
  const finished = await Promise.race([idle().then(() => "done" as const), graceOver]);
  clearTimeout(timer);
  if (finished === "grace") {
    log.warn(
      "Deliveries still in flight after the grace period are abandoned; they stay uncommitted " +
        "and are delivered again on the next start",
    );
    for (const lane of lanes) lane.abandon(new Error("shutdown grace period over"));
    await idle();
  }
}

/** The group's new assignment: the lanes of partitions this process no longer owns are revoked. */
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
