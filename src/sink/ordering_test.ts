import assert from "node:assert/strict";
import { type Ordering, runInOrder } from "./ordering.ts";
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
  await runInOrder(
    items,
    { ordering, keyOf: (i) => i.key, limiter, signal: new AbortController().signal },
    async (item) => {
      peak = Math.max(peak, ++active);
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 4)));
      active--;
      finished.push(item);
      return true;
    },
  );
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

Deno.test("ordering: work returning false halts; nothing after it starts", async () => {
  const started: number[] = [];
  await runInOrder(items(20, 0), {
    ordering: "partition",
    keyOf: () => undefined,
    limiter: createLimiter(4),
    signal: new AbortController().signal,
  }, (item) => {
    started.push(item.id);
    return Promise.resolve(item.id !== 5);
  });
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
});

Deno.test("ordering: an error is thrown after the started items finished; the limiter is left whole", async () => {
  const limiter = createLimiter(3);
  let finishedAfter = 0;
  await assert.rejects(
    runInOrder(items(10, 0), {
      ordering: "none",
      keyOf: () => undefined,
      limiter,
      signal: new AbortController().signal,
    }, async (item) => {
      if (item.id === 1) throw new RangeError("bug");
      await new Promise((resolve) => setTimeout(resolve, 5));
      finishedAfter++;
      return true;
    }),
    RangeError,
  );
  assert.ok(finishedAfter >= 1);
  // All three slots are free again.
  for (let i = 0; i < 3; i++) await limiter.acquire(new AbortController().signal);
});
