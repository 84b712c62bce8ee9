import assert from "node:assert/strict";
import { deadLetter, type DeadLetterDeps, writeDeadLetter } from "./dead_letter.ts";
import { createLogger } from "../log.ts";
import { presenter } from "../outward.ts";
import type { SourceRecord } from "../record.ts";

const encoder = new TextEncoder();
const record: SourceRecord = {
  topic: "fhir",
  partition: 3,
  offset: 42,
  key: encoder.encode("k"),
  value: encoder.encode('{"resourceType":"Bundle"}'),
  headers: { "Content-Type": "application/fhir+json", "eventsink.error.status": "500", "Eventsink.Old": "x" },
  timestamp: "1764300000000",
};
const rejection = {
  reason: "EventStore answered 422: bad",
  status: 422,
  attempts: 2,
  at: new Date(0),
  version: "1.2.3",
};

Deno.test("dead letter: the original key, value and headers, with fresh context headers", () => {
  const letter = deadLetter(record, rejection, presenter());
  assert.strictEqual(letter.value, record.value, "the very same bytes");
  assert.strictEqual(letter.key, record.key);
  assert.deepEqual(letter.headers, {
    "Content-Type": "application/fhir+json",
    "eventsink.source.topic": "fhir",
    "eventsink.source.partition": "3",
    "eventsink.source.offset": "42",
    "eventsink.source.timestamp": "1764300000000",
    "eventsink.error.status": "422",
    "eventsink.error.reason": "EventStore answered 422: bad",
    "eventsink.error.time": "1970-01-01T00:00:00.000Z",
    "eventsink.error.attempts": "2",
    "eventsink.version": "1.2.3",
  });
});

Deno.test("dead letter: a local rejection has no status header", () => {
  const letter = deadLetter(record, { ...rejection, status: undefined }, presenter());
  assert.equal(letter.headers["eventsink.error.status"], undefined);
});

function deps(publish: DeadLetterDeps["publish"]): DeadLetterDeps {
  return {
    topic: "dlq",
    publish,
    policy: { initialMs: 10, maxMs: 100, giveUpMs: undefined, poison: undefined, responseWaitMs: undefined },
    log: createLogger({ level: "error", format: "json", write: () => {} }),
    sleep: () => Promise.resolve(),
    present: presenter(),
  };
}

Deno.test("dead letter: broker errors are retried until acknowledged", async () => {
  let calls = 0;
  const kafkaError = Object.assign(new Error("Connection error"), { name: "KafkaJSConnectionError" });
  await writeDeadLetter(deps(() => (++calls < 5 ? Promise.reject(kafkaError) : Promise.resolve())), {
    record,
    rejection,
  }, new AbortController().signal);
  assert.equal(calls, 5);
});

Deno.test("dead letter: a bug is not retried", async () => {
  await assert.rejects(
    writeDeadLetter(
      deps(() => Promise.reject(new TypeError("oops"))),
      { record, rejection },
      new AbortController().signal,
    ),
    TypeError,
  );
});
