import assert from "node:assert/strict";
import { batch, deferred, memoryLog } from "../../tests/support/fakes.ts";
import type { SourceRecord } from "../record.ts";
import { createLane, type Lane, type LaneDeps } from "./lane.ts";
import { createLimiter } from "./limiter.ts";

/** A lane on partition 0 whose records are handled by `handle` (default: at once, accounted). */
function laneWith(overrides: Partial<LaneDeps> = {}) {
  const { log, lines } = memoryLog();
  const handled: number[] = [];
  const failures: string[] = [];
  const deleted: number[] = [];
  let stopping = false;
  const lane = createLane({
    topic: "t",
    partition: 0,
    ordering: "partition",
    limiter: createLimiter(8),
    handle: (record: SourceRecord) => {
      handled.push(record.offset);
      return Promise.resolve(true);
    },
    stopping: () => stopping,
    fail: (message) => void failures.push(message),
    deleted: (records) => void deleted.push(records),
    log,
    ...overrides,
  });
  return { lane, lines, handled, failures, deleted, stop: () => (stopping = true) };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

/** The 1 s ticker fires, and its commit goes out. */
async function commitTick(lane: Lane): Promise<void> {
  lane.tick();
  await tick();
}

Deno.test("lane: a batch is taken, delivered in offset order, and committed by the next tick", async () => {
  const { lane, handled } = laneWith();
  const first = batch(0, [3, 4, 5], { highWatermark: 9 });
  lane.take(first);
  assert.deepEqual(first.resolved, [5], "KafkaJS may fetch on after the records taken over");
  await lane.idle();
  assert.deepEqual(handled, [3, 4, 5]);
  assert.deepEqual(first.commits, [], "no commit per batch: the ticker's, once a second");
  await commitTick(lane);
  assert.deepEqual(first.commits, [6]);
  assert.deepEqual(lane.status(), { partition: 0, committed: 6, next: 6, highWatermark: 9, inFlight: 0 });
});

Deno.test("lane: the second batch held pauses the partition, which resumes once one settled", async () => {
  const gate = deferred<boolean>();
  const { lane } = laneWith({ handle: () => gate.promise });
  const one = batch(0, [0]);
  const two = batch(0, [1]);
  lane.take(one);
  assert.equal(one.paused, 0, "one batch in hand: fetch on");
  lane.take(two);
  assert.equal(two.paused, 1, "two batches in hand: pause");
  gate.resolve(true);
  await lane.idle();
  assert.equal(two.resumed, 1);
});

Deno.test("lane: a batch repeated after a consumer restart is taken only for its new records", async () => {
  const { lane, handled } = laneWith();
  lane.take(batch(0, [0, 1, 2]));
  const repeated = batch(0, [1, 2, 3, 4]);
  lane.take(repeated);
  await lane.idle();
  assert.deepEqual(handled, [0, 1, 2, 3, 4]);
  assert.deepEqual(repeated.resolved, [4]);
});

Deno.test("lane: a revoked partition's records in flight abort uncommitted, and its status starts afresh", async () => {
  const { lane } = laneWith({
    handle: (_record, signal) =>
      new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
  });
  const taken = batch(0, [0, 1]);
  lane.take(taken);
  await tick();
  assert.equal(lane.status().inFlight, 2);
  lane.revoke(new Error("partition 0 was revoked"));
  await lane.idle();
  assert.deepEqual(taken.commits, [], "the partition's next owner delivers them");
  assert.deepEqual(lane.status(), {
    partition: 0,
    committed: undefined,
    next: undefined,
    highWatermark: undefined,
    inFlight: 0,
  });
});

Deno.test("lane: a record left unaccounted halts its batch; a stop commits up to it", async () => {
  const { lane, handled, stop } = laneWith({
    handle: (record) => {
      handled.push(record.offset);
      return Promise.resolve(record.offset !== 2);
    },
  });
  const taken = batch(0, [0, 1, 2, 3]);
  lane.take(taken);
  await lane.idle();
  assert.deepEqual(handled, [0, 1, 2], "record 3 never started");
  assert.deepEqual(taken.commits, []);
  stop();
  await lane.idle();
  assert.deepEqual(taken.commits, [2], "a stop commits what was delivered, even between ticks");
});

Deno.test("lane: the ticker commits the progress of a batch still held up by one record", async () => {
  const stuck = deferred<boolean>();
  const { lane } = laneWith({
    handle: (record) => record.offset === 1 ? stuck.promise : Promise.resolve(true),
  });
  const taken = batch(0, [0, 1, 2]);
  lane.take(taken);
  await tick();
  await commitTick(lane);
  assert.deepEqual(taken.commits, [1], "record 0 is delivered: commit up to the stuck one");
  stuck.resolve(true);
  await lane.idle();
  await commitTick(lane);
  assert.deepEqual(taken.commits, [1, 3]);
});

Deno.test("lane: the next batch runs beside the slowest record of the one before; commits wait for it", async () => {
  const slow = deferred<boolean>();
  const { lane, handled } = laneWith({
    ordering: "none",
    handle: (record) => {
      handled.push(record.offset);
      return record.offset === 1 ? slow.promise : Promise.resolve(true);
    },
  });
  const first = batch(0, [0, 1]);
  const second = batch(0, [2, 3]);
  lane.take(first);
  lane.take(second);
  await tick();
  assert.deepEqual(handled, [0, 1, 2, 3], "the second batch did not wait for record 1");
  await commitTick(lane);
  assert.deepEqual(second.commits, [1], "not past record 1");
  slow.resolve(true);
  await lane.idle();
  await commitTick(lane);
  assert.deepEqual(second.commits, [1, 4]);
});

Deno.test("lane: records deleted by retention before they were read are named with the next batch", async () => {
  const { lane, lines, deleted } = laneWith();
  lane.assigned({ partition: 0, committed: 40, earliest: 100 });
  assert.equal(lane.status().committed, 40);
  lane.take(batch(0, [100, 101]));
  await lane.idle();
  const warning = lines.find((line) => line.level === "warn");
  assert.match(String(warning?.msg), /^Records 40 to 99 \(60\) of partition 0 were deleted \(retention\)/);
  assert.equal(lines.filter((line) => line.level === "warn").length, 1, "said once");
  assert.deepEqual(deleted, [60], "counted once");
});

Deno.test("lane: an offset out of range after records were taken counts the loss from the next one", async () => {
  const { lane, lines, deleted } = laneWith();
  lane.take(batch(0, [0, 1, 2]));
  await lane.idle();
  lane.offsetOutOfRange();
  lane.take(batch(0, [50]));
  await lane.idle();
  const warning = lines.find((line) => line.level === "warn");
  assert.equal(warning?.lostFrom, 3);
  assert.equal(warning?.lostTo, 49);
  assert.deepEqual(deleted, [47]);
});

Deno.test("lane: records deleted to a bounded run's end are committed past", async () => {
  const { lane, deleted } = laneWith();
  const first = batch(0, [0, 1, 2]);
  lane.take(first);
  await lane.idle();
  lane.skipDeleted(800, 797);
  await commitTick(lane);
  assert.deepEqual(first.commits, [800]);
  assert.deepEqual(deleted, [797]);
});

Deno.test("lane: a bug while delivering stops the sink, naming it", async () => {
  const { lane, failures } = laneWith({ handle: () => Promise.reject(new TypeError("oops")) });
  lane.take(batch(0, [0]));
  await lane.idle();
  assert.deepEqual(failures, ["Internal error while delivering; stopping"]);
});
