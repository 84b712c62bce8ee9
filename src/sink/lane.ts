import type { PartitionStart } from "../kafka/admin.ts";
import type { Batch } from "../kafka/consumer.ts";
import type { Logger } from "../log.ts";
import type { SourceRecord } from "../record.ts";
import { PartitionCommits } from "../settle/commits.ts";
import { PartitionOffsets } from "../settle/offsets.ts";
import type { Limiter } from "./limiter.ts";
import { createOrderedRunner, type OrderedRunner, type Ordering } from "./ordering.ts";
import { type LossMark, lossReport, markAtAssignment, markAtOutOfRange } from "./retention.ts";
import type { PartitionStatus } from "./status.ts";

/**
 * A lane holds this many batches at most: the running one and the next, fetched while the first is
 * delivered and started beside the first's last records, so that no partition waits between batches.
 * Memory per partition stays within this many of KafkaJS's batches (its maxBytesPerPartition each).
 */
export const BATCHES_AHEAD = 2;

/** What a lane needs from the sink. */
export interface LaneDeps {
  topic: string;
  partition: number;
  ordering: Ordering;
  /** Shared by all lanes: the process-wide bound on records in flight. */
  limiter: Limiter;
  /** Delivers and settles one record; false when it stays unaccounted, and no further record starts. */
  handle: (record: SourceRecord, signal: AbortSignal) => Promise<boolean>;
  /** True once the sink stops: no batch is taken, and a paused partition is not resumed. */
  stopping: () => boolean;
  /** A bug while delivering (not an abort). */
  fail: (message: string, error: unknown) => void;
  /** Records Kafka deleted before they were delivered (see retention.ts). */
  deleted: (records: number) => void;
  log: Logger;
}

/** One partition's batches in offset order, one fetched ahead. */
export interface Lane {
  /** Takes a batch over; pauses the partition while {@link BATCHES_AHEAD} batches are held. */
  take(batch: Batch): void;
  /** The group took the partition away: work in flight aborts, uncommitted; a new ownership period starts. */
  revoke(reason: Error): void;
  /** The group's committed offset and the earliest record kept, read after an assignment. */
  assigned(start: PartitionStart): void;
  /** KafkaJS found the fetch offset deleted and moves the partition to its earliest record. */
  offsetOutOfRange(): void;
  /** The `records` before `offset` were deleted and no batch will bring any (a bounded run's end). */
  skipDeleted(offset: number, records: number): void;
  /** Work in flight aborts, uncommitted (the shutdown grace period is over); the term stays for status. */
  abandon(reason: Error): void;
  /** Commits progress now (the ticker), unless revoked or a commit is still waiting. */
  tick(): void;
  /** Every batch taken so far settled; when stopping, their progress committed too. */
  idle(): Promise<void>;
  status(): PartitionStatus;
}

/** One ownership period of the partition: from an assignment to its revocation. */
interface Term {
  abort: AbortController;
  tracker: PartitionOffsets;
  commits: PartitionCommits;
  /** The log-end offset seen with the latest batch. */
  highWatermark: number | undefined;
  /** The group's committed offset when the term began, if known. */
  startOffset: number | undefined;
  loss: LossMark;
  /** Runs the term's batches in order, each after the previous one started. */
  run: OrderedRunner<SourceRecord>;
}

export function createLane(deps: LaneDeps): Lane {
  const { partition, log } = deps;
  let term = newTerm(deps);
  /** Every batch taken so far settled. */
  let tail: Promise<void> = Promise.resolve();
  /** Batches taken and not yet settled (the running one included). */
  let held = 0;
  /** Set while the lane has paused its partition: resumes it. */
  let resume: (() => void) | undefined;

  function take(batch: Batch): void {
    const current = term;
    current.highWatermark = batch.highWatermark;
    const first = batch.records[0];
    if (first && current.loss !== undefined) reportLoss(current, first.offset);
    // After KafkaJS restarted its consumer (its pause state and fetch position are new), a batch can
    // repeat records this term already holds: take only the new ones.
    const last = current.tracker.lastAdded();
    const records = batch.records.filter((r) => last === undefined || r.offset > last);
    for (const record of records) current.tracker.add(record.offset);
    current.commits.taken(batch, records[0]?.offset);
    // KafkaJS fetches on after the records taken over; only our own commits say what was delivered.
    const taken = records.at(-1)?.offset ?? last;
    if (taken !== undefined) batch.resolve(taken);
    held++;
    if (held >= BATCHES_AHEAD) resume ??= batch.pause();
    const settled = current.run(records).catch((error) => {
      if (!current.abort.signal.aborted) deps.fail("Internal error while delivering; stopping", error);
    }).finally(() => {
      held--;
      if (held < BATCHES_AHEAD && resume && !deps.stopping()) {
        resume();
        resume = undefined;
      }
    });
    tail = Promise.all([tail, settled]).then(() => {});
  }

  function reportLoss(current: Term, earliest: number): void {
    const report = lossReport(current.loss!, { topic: deps.topic, partition, earliest });
    current.loss = undefined;
    if (!report) return;
    log.warn(report.message, report.fields);
    deps.deleted(report.lost);
  }

  return {
    take,
    revoke(reason) {
      term.abort.abort(reason);
      term = newTerm(deps);
    },
    abandon(reason) {
      term.abort.abort(reason);
    },
    assigned(start) {
      // Once records came, the first batch has already told (or not) of records deleted before it.
      if (term.tracker.lastAdded() !== undefined) return;
      term.startOffset = start.committed;
      term.loss = markAtAssignment(term.loss, start);
    },
    offsetOutOfRange() {
      term.loss = markAtOutOfRange(term.tracker.lastAdded(), term.startOffset);
    },
    skipDeleted(offset, records) {
      deps.deleted(records);
      term.tracker.skipTo(offset);
    },
    tick() {
      if (!term.abort.signal.aborted) term.commits.tick();
    },
    // The ticker commits while running, once a second (a commit after every batch, ~100 a second in a
    // replay, doubled the broker's CPU per record); a stop commits here. A revoked term has nothing to
    // commit: its successor starts afresh.
    idle: () => tail.then(() => deps.stopping() ? term.commits.commit() : undefined),
    status: () => ({
      partition,
      committed: term.commits.committed() ?? term.startOffset,
      next: term.tracker.committable(),
      highWatermark: term.highWatermark,
      inFlight: term.tracker.inFlight(),
    }),
  };
}

/** A term's abort, offsets, commits and runner; its records go through `deps.handle`. */
function newTerm(deps: LaneDeps): Term {
  const abort = new AbortController();
  const tracker = new PartitionOffsets();
  const { signal } = abort;
  const options = { ordering: deps.ordering, keyOf: orderingKey, limiter: deps.limiter, signal };
  const run = createOrderedRunner<SourceRecord>(options, async (record) => {
    if (deps.stopping() || signal.aborted) return false;
    if (!(await deps.handle(record, signal))) return false;
    tracker.complete(record.offset);
    return true;
  });
  const commits = new PartitionCommits(tracker, deps.log);
  return {
    abort,
    tracker,
    commits,
    highWatermark: undefined,
    startOffset: undefined,
    loss: undefined,
    run,
  };
}

const keyDecoder = new TextDecoder();

/** Records with equal keys keep their order under `--ordering key`; a null key orders nothing. */
function orderingKey(record: SourceRecord): string | undefined {
  // Lossy for binary keys, which can only merge keys: that costs concurrency, never order.
  return record.key === null ? undefined : keyDecoder.decode(record.key);
}
