import assert from "node:assert/strict";
import { createAttemptSignals } from "./attempt_signals.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("attempt signals: an attempt without an answer aborts with a TimeoutError at its own deadline", async () => {
  const signals = createAttemptSignals(150);
  const parent = new AbortController().signal;
  const startedAt = performance.now();
  const first = signals.start(parent);
  await sleep(60);
  const second = signals.start(parent);
  const ended = second.signal.aborted ? 0 : await new Promise<number>((resolve) => {
    first.signal.addEventListener("abort", () => assert.equal(second.signal.aborted, false));
    second.signal.addEventListener("abort", () => resolve(performance.now() - startedAt));
  });
  assert.equal(first.signal.reason.name, "TimeoutError");
  assert.equal(second.signal.reason.message, "no answer within 150 ms");
  // Its own deadline (210 ms), not one timeout after the first one ran out (300 ms).
  assert.ok(ended >= 205 && ended < 280, `the second one ended after ${Math.round(ended)} ms`);
  first.done();
  second.done();
});

Deno.test("attempt signals: attempts that end are never aborted, and no timer outlives the last one", async () => {
  const signals = createAttemptSignals(100);
  const parent = new AbortController().signal;
  const attempts = Array.from({ length: 3_000 }, () => signals.start(parent));
  // Ended out of order: the oldest last.
  for (const attempt of attempts.slice(1).reverse()) attempt.done();
  const slow = attempts[0]!;
  await sleep(150);
  assert.equal(slow.signal.reason?.name, "TimeoutError", "the one left ran out of time");
  assert.ok(attempts.slice(1).every((a) => !a.signal.aborted), "ended attempts were not aborted");
  slow.done();
  const late = signals.start(parent);
  late.done();
  // Deno's test sanitizer fails this test if a timer was left behind.
});

Deno.test("attempt signals: a parent's abort ends its live attempts with its reason, and no one else's", () => {
  const signals = createAttemptSignals(30_000);
  const lost = new AbortController();
  const kept = new AbortController();
  const live = [signals.start(lost.signal), signals.start(lost.signal)];
  const ended = signals.start(lost.signal);
  ended.done();
  const other = signals.start(kept.signal);
  lost.abort(new Error("partition 3 was revoked"));
  assert.deepEqual(live.map((a) => a.signal.reason?.message), [
    "partition 3 was revoked",
    "partition 3 was revoked",
  ]);
  assert.equal(ended.signal.aborted, false);
  assert.equal(other.signal.aborted, false);
  const afterwards = signals.start(lost.signal);
  assert.equal(afterwards.signal.reason?.message, "partition 3 was revoked", "an aborted parent starts none");
  for (const attempt of [...live, other, afterwards]) attempt.done();
});
