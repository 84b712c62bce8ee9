import assert from "node:assert/strict";
import { PartitionOffsets } from "./offsets.ts";

function tracker(...offsets: number[]): PartitionOffsets {
  const t = new PartitionOffsets();
  for (const offset of offsets) t.add(offset);
  return t;
}

Deno.test("offsets: nothing to commit before anything is handed out", () => {
  assert.equal(new PartitionOffsets().committable(), undefined);
});

Deno.test("offsets: in-order completion moves the commit point one by one", () => {
  const t = tracker(10, 11, 12);
  assert.equal(t.committable(), 10);
  t.complete(10);
  assert.equal(t.committable(), 11);
  t.complete(11);
  t.complete(12);
  assert.equal(t.committable(), 13);
  assert.equal(t.inFlight(), 0);
});

/** Completes each offset of `steps` in turn and returns the commit point after each. */
function commitPoints(handedOut: number[], steps: number[]): Array<number | undefined> {
  const t = tracker(...handedOut);
  return steps.map((offset) => {
    t.complete(offset);
    return t.committable();
  });
}

Deno.test("offsets: out-of-order completion never passes an unaccounted record", () => {
  assert.deepEqual(commitPoints([0, 1, 2, 3, 4], [3, 1, 0, 4, 2]), [0, 0, 2, 2, 5]);
});

Deno.test("offsets: gaps (compaction, transaction markers) are stepped over", () => {
  assert.deepEqual(commitPoints([5, 9, 20], [5, 20, 9]), [9, 9, 21]);
});

Deno.test("offsets: misuse is a bug and says so", () => {
  const t = tracker(1, 2);
  assert.throws(() => t.add(2), RangeError);
  assert.throws(() => t.complete(7), RangeError);
  t.complete(1);
  assert.throws(() => t.complete(1), RangeError, "completing twice");
});

Deno.test("offsets: random completion orders agree with a simple model", () => {
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let round = 0; round < 20; round++) {
    const offsets: number[] = [];
    for (let o = Math.floor(random() * 5), n = 0; n < 3000; n++, o += 1 + Math.floor(random() * 3)) {
      offsets.push(o);
    }
    const t = tracker(...offsets);
    const order = [...offsets].sort(() => random() - 0.5);
    const done = new Set<number>();
    for (const offset of order.slice(0, Math.floor(random() * order.length))) {
      t.complete(offset);
      done.add(offset);
      const firstOpen = offsets.find((o) => !done.has(o));
      assert.equal(t.committable(), firstOpen ?? offsets.at(-1)! + 1);
    }
    assert.equal(t.inFlight(), offsets.length - done.size);
  }
});

Deno.test("offsets: skipping deleted records moves the commit point only with nothing in flight", () => {
  const t = tracker(10, 11);
  t.complete(10);
  t.skipTo(800);
  assert.equal(t.committable(), 11, "record 11 is still in flight");
  t.complete(11);
  t.skipTo(800);
  assert.equal(t.committable(), 800);
  t.skipTo(500);
  assert.equal(t.committable(), 800, "never back");
  t.add(800);
  assert.equal(t.inFlight(), 1, "records after the skip are handed out as before");
});
