import assert from "node:assert/strict";
import { createDeletionWatch, deletedToEnd } from "./deleted_to_end.ts";
import type { Bounds } from "./progress.ts";
import type { OffsetAdmin, PartitionRange } from "../kafka/admin.ts";
import { memoryLog } from "../../tests/support/fakes.ts";
import { type SinkStatus, zeroCounts } from "../sink/status.ts";

const bounds: Bounds = { start: new Map([[0, 0], [1, 0]]), end: new Map([[0, 100], [1, 100]]) };

function status(inFlight: Record<number, number>): SinkStatus {
  const partitions = Object.entries(inFlight).map(([partition, n]) => ({
    partition: Number(partition),
    committed: undefined,
    next: undefined,
    highWatermark: undefined,
    inFlight: n,
  }));
  return { phase: "consuming", counts: zeroCounts(), partitions };
}

Deno.test("deleted to end: a partition that now begins at or past its end, with nothing in flight, lost the rest", () => {
  const positions = new Map([[0, 40], [1, 40]]);
  assert.deepEqual(deletedToEnd(bounds, positions, new Map([[0, 100]]), status({ 0: 0, 1: 0 })), [
    { partition: 0, from: 40, to: 99 },
  ]);
  assert.deepEqual(deletedToEnd(bounds, positions, new Map([[0, 130]]), status({ 0: 0 })), [
    { partition: 0, from: 40, to: 99 },
  ]);
});

Deno.test("deleted to end: not while records are in flight, nor when records before the end are left", () => {
  const positions = new Map([[0, 40]]);
  assert.deepEqual(deletedToEnd(bounds, positions, new Map([[0, 100]]), status({ 0: 3 })), []);
  assert.deepEqual(deletedToEnd(bounds, positions, new Map([[0, 99]]), status({ 0: 0 })), [], "99 is left");
  assert.deepEqual(deletedToEnd(bounds, new Map([[0, 100]]), new Map([[0, 100]]), status({ 0: 0 })), []);
  assert.deepEqual(
    deletedToEnd({ ...bounds, end: undefined }, positions, new Map([[0, 100]]), status({ 0: 0 })),
    [],
  );
  assert.deepEqual(deletedToEnd(bounds, positions, new Map([[0, 100]]), status({})), [], "not assigned here");
});

Deno.test("deleted to end: the watch asks the broker after a move, then warns once and moves the position", async () => {
  let asked = 0;
  const admin = {
    ranges: (): Promise<PartitionRange[]> => {
      asked++;
      return Promise.resolve([{ partition: 0, low: 100, high: 120 }, { partition: 1, low: 0, high: 100 }]);
    },
  } as unknown as OffsetAdmin;
  const { log, lines } = memoryLog();
  const warnings = () => lines.filter((line) => line.level === "warn");
  const watch = createDeletionWatch(admin, "t", log);
  const positions = new Map([[0, 40], [1, 40]]);
  const skipped: number[][] = [];
  const skip = (partition: number, offset: number, records: number) =>
    void skipped.push([partition, offset, records]);
  watch.check(bounds, positions, status({ 0: 0, 1: 0 }), skip);
  assert.equal(asked, 0, "nothing moved: the broker is not asked");
  watch.moved(0);
  watch.check(bounds, positions, status({ 0: 0, 1: 0 }), skip);
  await Promise.resolve();
  watch.check(bounds, positions, status({ 0: 0, 1: 0 }), skip);
  assert.equal(asked, 1);
  assert.equal(positions.get(0), 100);
  assert.equal(positions.get(1), 40);
  const [warning] = warnings();
  assert.match(warning!.msg, /^Records 40 to 99 \(60\) of partition 0 were deleted \(retention\)/);
  assert.deepEqual([warning!.partition, warning!.lostFrom, warning!.lostTo], [0, 40, 99]);
  watch.check(bounds, positions, status({ 0: 0, 1: 0 }), skip);
  assert.equal(warnings().length, 1, "said once");
  assert.deepEqual(skipped, [[0, 100, 60]], "counted and committed past, once");
});
