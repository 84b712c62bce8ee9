import assert from "node:assert/strict";
import { burstFor, createRateSchedule, limitRate } from "./rate_limit.ts";
import type { SourceRecord } from "../record.ts";
import type { DeliveryResult } from "./deliver.ts";

Deno.test("rate schedule: a burst at once, then one interval apart", () => {
  const take = createRateSchedule(10, 3); // 100 ms apart, 3 at once
  assert.deepEqual([take(0), take(0), take(0), take(0), take(0)], [0, 0, 0, 100, 200]);
});

Deno.test("rate schedule: callers that come on time never wait; an idle bucket refills up to the burst", () => {
  const take = createRateSchedule(4, 1); // 250 ms apart
  assert.deepEqual([0, 250, 500, 750].map(take), [0, 0, 0, 0]);
  assert.equal(take(800), 200, "early: waits for its slot");
  const idle = createRateSchedule(4, 2);
  assert.deepEqual([idle(0), idle(0), idle(0)], [0, 0, 250]);
  assert.deepEqual([idle(10_000), idle(10_000), idle(10_000)], [0, 0, 250], "after a pause, the burst again");
});

Deno.test("rate schedule: over a long run the rate holds exactly", () => {
  const rate = 123;
  const take = createRateSchedule(rate, burstFor(rate));
  // Many callers at once: the n-th is let through at its wait; the last one sets the pace.
  const waits = Array.from({ length: 10_000 }, () => take(0));
  const measured = ((waits.length - burstFor(rate)) * 1_000) / waits.at(-1)!;
  assert.ok(Math.abs(measured - rate) < 0.01, `measured ${measured}`);
});

Deno.test("rate: the burst is a tenth of a second's worth, at least one", () => {
  assert.deepEqual([burstFor(0.5), burstFor(5), burstFor(100), burstFor(1_234)], [1, 1, 10, 123]);
});

Deno.test("limitRate: sleeps for its slot before delivering, with fake time", async () => {
  let now = 1_000;
  const slept: number[] = [];
  const delivered: number[] = [];
  const deliver = limitRate(
    (record: SourceRecord): Promise<DeliveryResult> => {
      delivered.push(record.offset);
      return Promise.resolve({ kind: "delivered", status: 202, attempts: 1 });
    },
    20, // 50 ms apart, a burst of 2
    {
      now: () => now,
      sleep: (ms) => {
        slept.push(ms);
        now += ms;
        return Promise.resolve();
      },
    },
  );
  const signal = new AbortController().signal;
  for (let offset = 0; offset < 5; offset++) {
    await deliver({ offset } as SourceRecord, signal);
  }
  assert.deepEqual(delivered, [0, 1, 2, 3, 4]);
  assert.deepEqual(slept, [50, 50, 50]);
});

Deno.test("limitRate: a stop while waiting ends the wait without delivering", async () => {
  const controller = new AbortController();
  let deliveredAny = false;
  const deliver = limitRate(
    () => {
      deliveredAny = true;
      return Promise.resolve({ kind: "tombstone" });
    },
    1,
    {
      now: () => 0,
      sleep: (_ms, signal) =>
        new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
    },
  );
  await deliver({ offset: 0 } as SourceRecord, controller.signal); // the burst
  const waiting = deliver({ offset: 1 } as SourceRecord, controller.signal);
  controller.abort(new Error("stopping"));
  await assert.rejects(waiting, /stopping/);
  assert.equal(deliveredAny, true);
});
