import assert from "node:assert/strict";
import { boundSource } from "./bounded_source.ts";
import type { Batch, Consumer, ConsumerEvents } from "../kafka/consumer.ts";
import type { SourceRecord } from "../record.ts";

/** A consumer whose batches the test hands in, recording pauses and commits. */
function fakeSource() {
  let events: ConsumerEvents | undefined;
  const paused: number[] = [];
  const committed: Array<[number, number]> = [];
  const source: Consumer = {
    start: (handlers) => {
      events = handlers;
      return Promise.resolve();
    },
    pauseAll: () => {},
    stop: () => Promise.resolve(),
    lastActivity: () => undefined,
  };
  const batch = (partition: number, offsets: number[]): Batch => ({
    topic: "t",
    partition,
    highWatermark: 100,
    records: offsets.map((offset) => ({ partition, offset } as SourceRecord)),
    resolve: () => {},
    commit: (offset) => {
      committed.push([partition, offset]);
      return Promise.resolve();
    },
    pause: () => {
      paused.push(partition);
      return () => {};
    },
  });
  return { source, paused, committed, deliver: (fetched: Batch) => events!.onBatch(fetched), batch };
}

async function started(source: Consumer): Promise<Batch[]> {
  const seen: Batch[] = [];
  await source.start({
    onBatch: (batch) => seen.push(batch),
    onAssigned: () => {},
    onCrash: () => {},
    onOffsetOutOfRange: () => {},
  });
  return seen;
}

Deno.test("bounded source: batches are cut at the end; a partition past its end is paused for good", async () => {
  const fake = fakeSource();
  const ends = new Map([[0, 5], [1, 3]]);
  const seen = await started(boundSource(fake.source, { end: () => ends, commit: true }));
  fake.deliver(fake.batch(0, [2, 3, 4, 5, 6]));
  fake.deliver(fake.batch(1, [3, 4]));
  fake.deliver(fake.batch(2, [0, 1]));
  assert.deepEqual(seen.map((h) => [h.partition, h.records.map((r) => r.offset)]), [[0, [2, 3, 4]], [2, [
    0,
    1,
  ]]]);
  assert.deepEqual(fake.paused, [1], "only the partition with nothing before its end");
  await seen[0]!.commit(5);
  assert.deepEqual(fake.committed, [[0, 5]], "commits pass through");
});

Deno.test("bounded source: before the end is known, and without one, batches pass whole", async () => {
  const fake = fakeSource();
  const ends = new Map<number, number>();
  let known = false;
  const seen = await started(
    boundSource(fake.source, { end: () => (known ? ends : undefined), commit: true }),
  );
  fake.deliver(fake.batch(0, [7, 8]));
  known = true;
  fake.deliver(fake.batch(0, [9]));
  assert.deepEqual(seen.map((h) => h.records.length), [2, 1]);
});

Deno.test("bounded source: a dry run commits nothing", async () => {
  const fake = fakeSource();
  const seen = await started(boundSource(fake.source, { end: () => undefined, commit: false }));
  fake.deliver(fake.batch(0, [0]));
  await seen[0]!.commit(1);
  assert.deepEqual(fake.committed, []);
});
