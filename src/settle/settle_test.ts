import assert from "node:assert/strict";
import { memoryLog, record } from "../../tests/support/fakes.ts";
import type { DeliveryResult } from "../delivery/deliver.ts";
import { createSettle, type DeadLetterFn, type RejectedHandling } from "./settle.ts";

const signal = new AbortController().signal;
const REJECTED: DeliveryResult = {
  kind: "rejected",
  status: 422,
  reason: "EventStore answered 422",
  attempts: 1,
};

function settleWith(handling: RejectedHandling) {
  const { log, lines } = memoryLog();
  return { settle: createSettle(handling, log), lines };
}

Deno.test("settle: a delivered record ends delivered", async () => {
  const { settle, lines } = settleWith({ policy: "skip" });
  assert.equal(
    await settle(record(0, 7), { kind: "delivered", status: 202, attempts: 3 }, signal),
    "delivered",
  );
  assert.deepEqual(lines.map((l) => [l.level, l.msg, l.offset, l.attempts]), [["debug", "Delivered", 7, 3]]);
});

Deno.test("settle: a tombstone is skipped whatever the policy, at info", async () => {
  const { settle, lines } = settleWith({ policy: "stop" });
  assert.equal(await settle(record(0, 1), { kind: "tombstone" }, signal), "skipped");
  assert.equal(lines[0]?.msg, "Skipped a tombstone (a record without a value)");
  assert.equal(lines[0]?.level, "info");
});

Deno.test("settle: skip logs the reason and the policy, or the dry run's note", async () => {
  const skip = settleWith({ policy: "skip" });
  assert.equal(await skip.settle(record(0, 2), REJECTED, signal), "skipped");
  assert.equal(skip.lines[0]?.msg, "Skipped a rejected message (--on-rejected=skip)");
  assert.equal(skip.lines[0]?.reason, "EventStore answered 422");
  const dry = settleWith({ policy: "skip", note: "dry run: it would not be sent" });
  await dry.settle(record(0, 2), REJECTED, signal);
  assert.equal(dry.lines[0]?.msg, "Skipped a rejected message (dry run: it would not be sent)");
});

Deno.test("settle: stop holds the record, naming it and the way out", async () => {
  const { settle, lines } = settleWith({ policy: "stop" });
  assert.equal(await settle(record(2, 9), REJECTED, signal), "held");
  assert.equal(lines[0]?.level, "error");
  assert.match(String(lines[0]?.msg), /^Stopping at t\/2@9: the message was rejected and --on-rejected=stop/);
});

Deno.test("settle: dead-letter writes first, then ends dead-lettered", async () => {
  const written: Array<[number, string]> = [];
  const write: DeadLetterFn = (rec, rejected) => {
    written.push([rec.offset, rejected.reason]);
    return Promise.resolve();
  };
  const { settle, lines } = settleWith({ policy: "dead-letter", topic: "t.dlq", write });
  assert.equal(await settle(record(0, 4), REJECTED, signal), "dead-lettered");
  assert.deepEqual(written, [[4, "EventStore answered 422"]]);
  assert.equal(lines[0]?.msg, "Wrote a rejected message to the dead-letter topic");
  assert.equal(lines[0]?.deadLetterTopic, "t.dlq");
});

Deno.test("settle: an aborted dead-letter write rejects, so the record stays unaccounted", async () => {
  const controller = new AbortController();
  const write: DeadLetterFn = (_rec, _rejected, s) =>
    new Promise((_resolve, reject) => s.addEventListener("abort", () => reject(s.reason)));
  const { settle, lines } = settleWith({ policy: "dead-letter", topic: "t.dlq", write });
  const ending = settle(record(0, 4), REJECTED, controller.signal);
  controller.abort(new Error("partition 0 was revoked"));
  await assert.rejects(ending, /partition 0 was revoked/);
  assert.deepEqual(lines, []);
});
