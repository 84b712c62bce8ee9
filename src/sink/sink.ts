import type { PartitionStarts } from "../kafka/admin.ts";
import type { Batch, Consumer } from "../kafka/consumer.ts";
import { dispatch, type Ordering } from "./ordering.ts";
import { createLimiter } from "./limiter.ts";
import type { Logger } from "../log.ts";
import { PartitionOffsets } from "../settle/offsets.ts";
import { recordFields, recordName, type SourceRecord } from "../record.ts";
import type { DeliveryResult as Settled } from "../delivery/deliver.ts";

/** Settles one record: resolves once it is delivered or rejected; rejects only when `signal` aborts. */
export type SettleFn = (record: SourceRecord, signal: AbortSignal) => Promise<Settled>;

/** Writes the dead letter of a rejected record; resolves once the broker acknowledged it. */
export type DeadLetterFn = (
  record: SourceRecord,
  rejected: Extract<Settled, { kind: "rejected" }>,
  signal: AbortSignal,
) => Promise<void>;

/** What happens to a rejected record (see `--on-rejected`). */
export type RejectedHandling =
  /** `note` replaces "--on-rejected=skip" in the skip log line (a dry run says why it skips). */
  | { policy: "skip" | "stop"; note?: string }
  | { policy: "dead-letter"; topic: string; write: DeadLetterFn };

/**
 * Records by how they ended. Every record taken for delivery ends in exactly one of delivered,
 * deadLettered, skipped — or unfinished, when eventsink stopped or lost the partition before it ended
 * (uncommitted, so delivered again later): consumed = delivered + deadLettered + skipped + unfinished.
 */
export interface Counts {
  consumed: number;
  delivered: number;
  deadLettered: number;
  skipped: number;
  unfinished: number;
  /** Delivery attempts beyond the first, over all records. */
  retries: number;
}

/** Sink settings (see config.ts for their meaning). */
export interface SinkOptions {
  topic: string;
  ordering: Ordering;
  maxInFlight: number;
  shutdownGraceMs: number;
}

/** Where one assigned partition stands. */
export interface PartitionStatus {
  partition: number;
  /** The offset last committed by this process, else the group's committed offset when assigned. */
  committed: number | undefined;
  /** The first record not yet accounted for (the next commit point), if records were taken. */
  next: number | undefined;
  /** The log-end offset seen with the latest batch. */
  highWatermark: number | undefined;
  /** Records taken but not yet accounted for. */
  inFlight: number;
}

/** Where the sink is in its life: consuming once it joined the group and fetches. */
export type SinkPhase = "starting" | "consuming" | "stopping" | "stopped";

/** A snapshot for health, metrics and progress reporting. */
export interface SinkStatus {
  phase: SinkPhase;
  counts: Counts;
  /** Assigned partitions, in order; empty before the group was joined. */
  partitions: PartitionStatus[];
}

/** A running sink. */
export interface Sink {
  /** Runs until stopped or failed; resolves with the process exit code. */
  run(): Promise<{ exitCode: 0 | 1; counts: Counts }>;
  /** Starts a clean stop: no new records, deliveries in flight finish (within the grace period), commit. */
  stop(): void;
  status(): SinkStatus;
}

const keyDecoder = new TextDecoder();

/** Records with equal keys keep their order under `--ordering key`; a null key orders nothing. */
function orderingKey(record: SourceRecord): string | undefined {
  // Lossy for binary keys, which can only merge keys: that costs concurrency, never order.
  return record.key === null ? undefined : keyDecoder.decode(record.key);
}

/**
 * Delivered progress is committed this often (so a record stuck in retries holds back only itself, and a
 * commit that failed is made again), and at the end of every batch.
 */
const COMMIT_INTERVAL_MS = 1_000;

/** One partition's ownership period: from an assignment to its revocation. */
interface Term {
  abort: AbortController;
  tracker: PartitionOffsets;
  /** The log-end offset seen with the latest batch. */
  highWatermark: number | undefined;
  /** The first offset the term took. */
  firstOffset: number | undefined;
  /** The latest batch handed over: its payload commits for the term. */
  handoff: Batch | undefined;
  /** Last offset committed in this term. */
  committed: number | undefined;
  /** The commit in progress (commits are serialised). */
  committing: Promise<void>;
  /** Commits asked for and not yet done: the ticker adds none while the broker is slow to answer one. */
  commitsWaiting: number;
  /** The group's committed offset when the term began, if known. */
  startOffset: number | undefined;
  /** Set when KafkaJS reported the fetch offset deleted: where the partition stood then. */
  outOfRangeFrom: number | "unknown" | undefined;
}

/** A partition's pipeline: its batches run one after another on `tail`, in offset order. */
interface Lane {
  partition: number;
  tail: Promise<void>;
  term: Term;
  /** Batches taken over and not yet settled (the running one included). */
  held: number;
  /** Set while the lane has paused its partition: resumes it. */
  resume: (() => void) | undefined;
}

/**
 * A lane holds this many batches at most: the running one and the next, fetched while the first is
 * delivered, so that no partition waits for a fetch between batches. Memory per partition stays within
 * this many of KafkaJS's batches (its maxBytesPerPartition each).
 */
const BATCHES_AHEAD = 2;

/**
 * The loop: KafkaJS fetches; each partition's batch is taken over by that partition's lane, and KafkaJS
 * fetches on at once. A lane holding {@link BATCHES_AHEAD} batches pauses its partition until it has
 * settled one, so that a partition held up by retries holds up nothing else, memory stays bounded, and
 * KafkaJS goes on heartbeating. Offsets are committed up to the first record not yet accounted for.
 */
export function createSink(
  options: SinkOptions,
  deps: {
    consumer: Consumer;
    partitionStarts: PartitionStarts;
    settle: SettleFn;
    onRejected: RejectedHandling;
    log: Logger;
  },
) {
  const { consumer, settle, onRejected, log } = deps;
  const lanes = new Map<number, Lane>();
  const limiter = createLimiter(options.maxInFlight);
  const counts: Counts = {
    consumed: 0,
    delivered: 0,
    deadLettered: 0,
    skipped: 0,
    unfinished: 0,
    retries: 0,
  };
  let stopping = false;
  let phase: SinkPhase = "starting";
  let exitCode: 0 | 1 = 0;
  let assigned: number[] = [];
  let stopRequested: () => void = () => {};
  const stopSignal = new Promise<void>((resolve) => (stopRequested = resolve));

  function newTerm(): Term {
    return {
      abort: new AbortController(),
      tracker: new PartitionOffsets(),
      committed: undefined,
      handoff: undefined,
      highWatermark: undefined,
      firstOffset: undefined,
      committing: Promise.resolve(),
      commitsWaiting: 0,
      startOffset: undefined,
      outOfRangeFrom: undefined,
    };
  }

  function laneFor(partition: number): Lane {
    let lane = lanes.get(partition);
    if (!lane) {
      lane = { partition, tail: Promise.resolve(), term: newTerm(), held: 0, resume: undefined };
      lanes.set(partition, lane);
    }
    return lane;
  }

  function revoke(lane: Lane): void {
    lane.term.abort.abort(new Error(`partition ${lane.partition} was revoked`));
    lane.term = newTerm();
  }

  function onBatch(handoff: Batch): void {
    if (stopping) return;
    const lane = laneFor(handoff.partition);
    const term = lane.term;
    term.handoff = handoff;
    term.highWatermark = handoff.highWatermark;
    const first = handoff.records[0];
    if (first && term.outOfRangeFrom !== undefined) reportDeleted(handoff.partition, term, first.offset);
    // After KafkaJS restarted its consumer (its pause state and fetch position are new), a batch can
    // repeat records this term already holds: take only the new ones.
    const last = term.tracker.lastAdded();
    const records = handoff.records.filter((r) => last === undefined || r.offset > last);
    term.firstOffset ??= records[0]?.offset;
    for (const record of records) term.tracker.add(record.offset);
    // KafkaJS fetches on after the records taken over; only our own commits say what was delivered.
    const taken = records.at(-1)?.offset ?? last;
    if (taken !== undefined) handoff.resolve(taken);
    lane.held++;
    if (lane.held >= BATCHES_AHEAD) lane.resume ??= handoff.pause();
    lane.tail = lane.tail.then(() => runBatch(term, handoff, records)).finally(() => {
      lane.held--;
      if (lane.held < BATCHES_AHEAD && lane.resume && !stopping) {
        lane.resume();
        lane.resume = undefined;
      }
    });
  }

  async function runBatch(term: Term, handoff: Batch, records: SourceRecord[]) {
    const signal = term.abort.signal;
    try {
      const dispatchOptions = { ordering: options.ordering, keyOf: orderingKey, limiter, signal };
      await dispatch(records, dispatchOptions, (record) => deliverOne(term, record, signal));
    } catch (error) {
      if (!signal.aborted) fail("Internal error while delivering; stopping", error);
    } finally {
      if (!signal.aborted || stopping) await commit(term, handoff);
    }
  }

  /** Delivers one record and accounts for it; false to start no further record of the batch. */
  async function deliverOne(term: Term, record: SourceRecord, signal: AbortSignal): Promise<boolean> {
    if (stopping || signal.aborted) return false;
    counts.consumed++;
    counts.unfinished++; // until accounted below
    const settled = await settle(record, signal);
    if (!(await account(record, settled, signal))) return false;
    counts.unfinished--;
    term.tracker.complete(record.offset);
    return true;
  }

  /**
   * Logs and counts a settled record, writing its dead letter if the policy says so; false when the
   * record must stay unaccounted (policy stop). Rejects when `signal` aborts during a dead-letter write.
   */
  async function account(record: SourceRecord, settled: Settled, signal: AbortSignal): Promise<boolean> {
    if (settled.kind === "tombstone") {
      counts.skipped++;
      log.info("Skipped a tombstone (a record without a value)", recordFields(record));
      return true;
    }
    counts.retries += settled.attempts > 1 ? settled.attempts - 1 : 0;
    if (settled.kind === "delivered") {
      counts.delivered++;
      log.debug("Delivered", { ...recordFields(record), status: settled.status, attempts: settled.attempts });
      return true;
    }
    const fields = { ...recordFields(record), status: settled.status, reason: settled.reason };
    if (onRejected.policy === "dead-letter") {
      await onRejected.write(record, settled, signal);
      counts.deadLettered++;
      log.warn("Wrote a rejected message to the dead-letter topic", {
        ...fields,
        deadLetterTopic: onRejected.topic,
      });
      return true;
    }
    if (onRejected.policy === "stop") {
      log.error(
        `Stopping at ${recordName(record)}: the message was rejected and --on-rejected=stop; it stays ` +
          "uncommitted. Fix or remove it, or restart with --on-rejected=skip",
        fields,
      );
      exitCode = 1;
      stop();
      return false;
    }
    counts.skipped++;
    log.warn(`Skipped a rejected message (${onRejected.note ?? "--on-rejected=skip"})`, fields);
    return true;
  }

  function commitAll(): void {
    for (const { term } of lanes.values()) {
      if (term.handoff && !term.abort.signal.aborted && term.commitsWaiting === 0) {
        void commit(term, term.handoff);
      }
    }
  }

  /** Commits the term's progress; commits of a term run one after another, so they land in order. */
  function commit(term: Term, handoff: Batch): Promise<void> {
    term.commitsWaiting++;
    term.committing = term.committing.then(() => commitNow(term, handoff)).finally(() =>
      term.commitsWaiting--
    );
    return term.committing;
  }

  async function commitNow(term: Term, handoff: Batch): Promise<void> {
    const offset = term.tracker.committable();
    // Nothing to say before the term's first record is accounted for, or when nothing moved.
    if (offset === undefined || offset === term.firstOffset || offset === term.committed) return;
    try {
      await handoff.commit(offset);
      term.committed = offset;
      log.debug("Committed", { topic: handoff.topic, partition: handoff.partition, offset });
    } catch (error) {
      // The group is rebalancing or the broker is away: those records stay uncommitted and are delivered
      // again by whoever owns the partition next. The EventStore takes repeats without harm.
      log.warn("Cannot commit offset; the records after the last commit may be delivered again", {
        topic: handoff.topic,
        partition: handoff.partition,
        offset,
        error: (error as Error).message,
      });
    }
  }

  function reportDeleted(partition: number, term: Term, earliest: number): void {
    const from = term.outOfRangeFrom === "unknown" ? undefined : term.outOfRangeFrom;
    term.outOfRangeFrom = undefined;
    if (from !== undefined && from >= earliest) return;
    log.warn(
      from === undefined
        ? `Records of partition ${partition} before offset ${earliest} were deleted (retention) before ` +
          "eventsink read them; resuming at the earliest record left"
        : `Records ${from} to ${earliest - 1} (${earliest - from}) of partition ${partition} were deleted ` +
          "(retention) before eventsink delivered them: they are lost to this sink. Resuming at the " +
          "earliest record left",
      { topic: options.topic, partition, lostFrom: from, lostTo: earliest - 1, resumeAt: earliest },
    );
  }

  function onAssigned(topic: string, partitions: number[]): void {
    const owned = new Set(partitions);
    assigned = [...partitions].sort((a, b) => a - b);
    for (const lane of lanes.values()) if (!owned.has(lane.partition)) revoke(lane);
    log.info("Partitions assigned", { topic, partitions: partitions.join(",") || "(none)" });
    if (partitions.length === 0) return;
    deps.partitionStarts(topic, partitions).then((starts) => {
      for (const start of starts) {
        const term = laneFor(start.partition).term;
        // Once records came, the first batch has already told (or not) of records deleted before it.
        if (term.tracker.lastAdded() !== undefined) continue;
        term.startOffset = start.committed;
        const deleted = start.committed !== undefined && start.committed < start.earliest;
        if (deleted || term.outOfRangeFrom === "unknown") term.outOfRangeFrom = start.committed ?? "unknown";
      }
    }).catch((error) => log.debug("Cannot read partition offsets", { error: (error as Error).message }));
  }

  function onOffsetOutOfRange(_topic: string, partition: number): void {
    const term = laneFor(partition).term;
    // Every record before the fetch position was taken over (and stays in hand): the loss starts there.
    const last = term.tracker.lastAdded();
    term.outOfRangeFrom = last !== undefined ? last + 1 : term.startOffset ?? "unknown";
  }

  function onCrash(error: Error, restart: boolean): void {
    if (stopping) return;
    if (restart) {
      // Deliveries in flight go on: the rejoin (onAssigned) revokes what this process no longer owns.
      log.warn("Kafka consumer failed; it restarts and rejoins the group by itself", {
        error: error.message,
      });
      return;
    }
    fail("Kafka consumer failed and cannot restart", error);
  }

  function fail(message: string, error: unknown): void {
    log.error(message, { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    exitCode = 1;
    stop();
  }

  function stop(): void {
    if (stopping) return;
    stopping = true;
    phase = "stopping";
    stopRequested();
  }

  async function drain(): Promise<void> {
    consumer.pauseAll();
    const tails = () => Promise.all([...lanes.values()].map((lane) => lane.tail));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<"grace">((resolve) => {
      timer = setTimeout(() => resolve("grace"), options.shutdownGraceMs);
    });
    const finished = await Promise.race([tails().then(() => "done" as const), graceOver]);
    clearTimeout(timer);
    if (finished === "grace") {
      log.warn(
        "Deliveries still in flight after the grace period are abandoned; they stay uncommitted " +
          "and are delivered again on the next start",
      );
      for (const lane of lanes.values()) lane.term.abort.abort(new Error("shutdown grace period over"));
      await tails();
    }
  }

  return {
    async run() {
      try {
        await consumer.start({ onBatch, onAssigned, onCrash, onOffsetOutOfRange });
      } catch (error) {
        stopping = true;
        phase = "stopped";
        await consumer.stop().catch(() => {});
        throw error;
      }
      if (!stopping) phase = "consuming";
      const ticker = setInterval(commitAll, COMMIT_INTERVAL_MS);
      await stopSignal;
      await drain();
      clearInterval(ticker);
      await consumer.stop().catch((error) => log.warn("Leaving the group failed", { error: error.message }));
      log.info("Stopped", { ...counts });
      phase = "stopped";
      return { exitCode, counts };
    },
    stop,
    status() {
      return {
        phase,
        counts: { ...counts },
        partitions: assigned.map((partition) => {
          const term = lanes.get(partition)?.term;
          return {
            partition,
            committed: term?.committed ?? term?.startOffset,
            next: term?.tracker.committable(),
            highWatermark: term?.highWatermark,
            inFlight: term?.tracker.inFlight() ?? 0,
          };
        }),
      };
    },
  } satisfies Sink;
}
