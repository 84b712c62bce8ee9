import assert from "node:assert/strict";
import { createOrderedRunner, type Ordering } from "./ordering.ts";
import { createLimiter } from "./limiter.ts";

interface Item {
  id: number;
  key: string | undefined;
}

/** Runs items in order where each item takes a random few milliseconds; returns start/end order and peak concurrency. */
async function run(ordering: Ordering, items: Item[], slots: number, seed = 7) {
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const limiter = createLimiter(slots);
  const finished: Item[] = [];
  let active = 0;
  let peak = 0;
  await createOrderedRunner<Item>(
    { ordering, keyOf: (i) => i.key, limiter, signal: new AbortController().signal },
    async (item) => {
      peak = Math.max(peak, ++active);
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 4)));
      active--;
      finished.push(item);
      return true;
    },
  )(items);
  return { finished, peak };
}

const items = (n: number, keys: number): Item[] =>
  Array.from({ length: n }, (_, id) => ({ id, key: keys === 0 ? undefined : `k${id % keys}` }));

Deno.test("ordering: partition order is strict, one at a time", async () => {
  const { finished, peak } = await run("partition", items(40, 5), 8);
  assert.deepEqual(finished.map((i) => i.id), items(40, 5).map((i) => i.id));
  assert.equal(peak, 1);
});

Deno.test("ordering: key order holds per key, keys overlap, within the limit", async () => {
  const all = items(300, 7);
  const { finished, peak } = await run("key", all, 5);
  assert.equal(finished.length, 300);
  for (let k = 0; k < 7; k++) {
    const ofKey = finished.filter((i) => i.key === `k${k}`).map((i) => i.id);
    assert.deepEqual(ofKey, [...ofKey].sort((a, b) => a - b), `key k${k} out of order`);
  }
  assert.ok(peak > 1 && peak <= 5, `peak ${peak}`);
  assert.notDeepEqual(finished.map((i) => i.id), all.map((i) => i.id), "keys did overlap");
});

Deno.test("ordering: records without a key wait for nothing; message and none ignore keys", async () => {
  const cases = [["key", items(100, 0)], ["message", items(100, 2)], ["none", items(100, 2)]] as const;
  for (const [ordering, list] of cases) {
    const { finished, peak } = await run(ordering, list, 16);
    assert.equal(finished.length, 100);
    assert.ok(peak > 2 && peak <= 16, `${ordering}: peak ${peak}`);
  }
});

/** Options for a runner over {@link Item}s. */
const optionsOf = (ordering: Ordering, slots: number | ReturnType<typeof createLimiter>) => ({
  ordering,
  keyOf: (i: Item) => i.key,
  limiter: typeof slots === "number" ? createLimiter(slots) : slots,
  signal: new AbortController().signal,
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("ordering: work returning false halts; nothing after it starts, in this batch or a later one", async () => {
  const started: number[] = [];
  const run = createOrderedRunner<Item>(optionsOf("partition", 4), (item) => {
    started.push(item.id);
    return Promise.resolve(item.id !== 5);
  });
  await Promise.all([run(items(20, 0)), run(items(3, 0).map((i) => ({ ...i, id: 100 + i.id })))]);
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
});

Deno.test("ordering: an error is thrown after the started items finished; the limiter is left whole", async () => {
  const limiter = createLimiter(3);
  let finishedAfter = 0;
  await assert.rejects(
    createOrderedRunner<Item>(optionsOf("none", limiter), async (item) => {
      if (item.id === 1) throw new RangeError("bug");
      await sleep(5);
      finishedAfter++;
      return true;
    })(items(10, 0)),
    RangeError,
  );
  assert.ok(finishedAfter >= 1);
  // All three slots are free again.
  for (let i = 0; i < 3; i++) await limiter.acquire(new AbortController().signal);
});

Deno.test("ordering: the next batch starts while the last records of the one before still run", async () => {
  for (const ordering of ["key", "message", "none"] as const) {
    const started: number[] = [];
    const gate = Promise.withResolvers<void>();
    const run = createOrderedRunner<Item>(optionsOf(ordering, 8), async (item) => {
      started.push(item.id);
      if (item.id === 0) await gate.promise; // the first batch's slowest record
      return true;
    });
    const first = run(items(3, 0));
    const second = run([{ id: 3, key: undefined }, { id: 4, key: undefined }]);
    await second;
    assert.deepEqual(started, [0, 1, 2, 3, 4], `${ordering}: the second batch ran beside record 0`);
    gate.resolve();
    await first;
  }
});

Deno.test("ordering: a key keeps its order across batches", async () => {
  const finished: number[] = [];
  const run = createOrderedRunner<Item>(optionsOf("key", 8), async (item) => {
    await sleep(item.id === 0 ? 20 : 0);
    finished.push(item.id);
    return true;
  });
  await Promise.all([
    run([{ id: 0, key: "a" }, { id: 1, key: "b" }]),
    run([{ id: 2, key: "a" }, { id: 3, key: "b" }]),
  ]);
  assert.deepEqual(finished, [1, 3, 0, 2]);
});

Deno.test("ordering: a record waiting for its key's predecessor holds no slot", async () => {
  const started: number[] = [];
  const gate = Promise.withResolvers<void>();
  const run = createOrderedRunner<Item>(optionsOf("key", 2), async (item) => {
    started.push(item.id);
    if (item.id === 0) await gate.promise;
    return true;
  });
  const done = run([{ id: 0, key: "a" }, { id: 1, key: "a" }, { id: 2, key: "b" }, { id: 3, key: "c" }]);
  await sleep(10);
  assert.deepEqual(started, [0, 2, 3], "b and c took the slot that record 1 would have held");
  gate.resolve();
  await done;
  assert.deepEqual(started, [0, 2, 3, 1]);
});
