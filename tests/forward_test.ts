/** The forward loop end to end: real broker, real HTTP, eventsink as its own process. */
import assert from "node:assert/strict";
import { committedOffsets, committedOffsetsByKafkaTool, endOffsets, produce } from "./support/broker.ts";
import { spawnEventsink } from "./support/eventsink_process.ts";
import { type Message, openPipeline, validMessages, waitUntil } from "./support/pipeline.ts";

const FHIR_JSON = "application/fhir+json; fhirVersion=4.0";

Deno.test("forward: bodies arrive byte-identical with the record's Content-Type; offsets committed only after 2xx", async () => {
  await using p = await openPipeline(3);
  const messages = await validMessages(9);
  // The EventStore is down (503) when eventsink starts: nothing may be committed until it accepts.
  p.store.faults.outage({ status: 503 });
  await produce(
    p.bootstrap,
    p.topic,
    messages.map((m, i) => ({
      key: m.messageId,
      value: m.bytes,
      partition: i % 3, // every partition gets records, so every one has an offset to commit
      // One record in three carries the bare media type under a lower-case name; one none at all.
      headers:
        (i % 3 === 0
          ? { "content-type": "Application/FHIR+JSON" }
          : i % 3 === 1
          ? { "Content-Type": FHIR_JSON }
          : {}) as Record<string, string>,
    })),
  );
  const sink = await spawnEventsink(p);
  try {
    await p.store.waitForRequests(6, { timeoutMs: 30_000 });
    assert.equal(p.store.stored().length, 0);
    assert.deepEqual(
      [...(await committedOffsets(p.bootstrap, p.group, p.topic)).values()].filter((o) => o >= 0),
      [],
    );
    assert.deepEqual(
      (await committedOffsetsByKafkaTool(p.bootstrap, p.group)).filter((r) => r.currentOffset >= 0),
      [],
    );

    p.store.faults.reset();
    await p.store.waitForStored(9, { timeoutMs: 30_000 });
    const stored = new Map(p.store.stored().map((s) => [s.messageId, s]));
    for (const [i, m] of messages.entries()) {
      const arrived = stored.get(m.messageId);
      assert.ok(arrived, `message ${i} not stored`);
      assert.deepEqual(arrived.body, m.bytes, `message ${i}: body not byte-identical`);
      const expected = i % 3 === 0 ? "Application/FHIR+JSON" : FHIR_JSON;
      assert.equal(arrived.contentType, expected, `message ${i}: Content-Type`);
    }

    const ends = await endOffsets(p.bootstrap, p.topic);
    await waitUntil("offsets committed to the end of every partition", async () => {
      const committed = await committedOffsets(p.bootstrap, p.group, p.topic);
      return [...ends].every(([partition, end]) => committed.get(partition) === end);
    });
    const tool = await committedOffsetsByKafkaTool(p.bootstrap, p.group);
    assert.deepEqual(
      tool.map((r) => [r.partition, r.currentOffset, r.lag]),
      [...ends].sort(([a], [b]) => a - b).map(([partition, end]) => [partition, end, 0]),
      "Kafka's own kafka-consumer-groups agrees",
    );
  } finally {
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(), 0);
    await sink.close();
  }
});

Deno.test("forward: a stopped and restarted eventsink resumes after the last committed record", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(20);
  // Both partitions get records, so both have an offset to commit.
  const record = (m: Message, i: number) => ({ key: m.messageId, value: m.bytes, partition: i % 2 });
  await produce(
    p.bootstrap,
    p.topic,
    messages.slice(0, 10).map(record),
  );

  const first = await spawnEventsink(p);
  try {
    await p.store.waitForStored(10, { timeoutMs: 30_000 });
    first.signal("SIGTERM");
    assert.equal(await first.exited(), 0);
    assert.ok(first.lines.some((l) => l.msg === "Stopped" && l.delivered === 10), "summary line");
  } finally {
    await first.close();
  }
  const committed = await committedOffsets(p.bootstrap, p.group, p.topic);
  assert.deepEqual(committed, await endOffsets(p.bootstrap, p.topic), "everything delivered was committed");

  await produce(p.bootstrap, p.topic, messages.slice(10).map(record));
  const requestsBefore = p.store.requests().length;
  const second = await spawnEventsink(p);
  try {
    await p.store.waitForStored(20, { timeoutMs: 30_000 });
    // A re-post of an old record would come before the new ones of its partition: 10 requests tell all.
    await waitUntil("the new records' requests", () => p.store.requests().length - requestsBefore >= 10);
    const again = p.store.requests().slice(requestsBefore);
    for (const request of again) {
      const [, partition, offset] = /-(\d+)-(\d+)$/.exec(request.headers["x-request-id"] ?? "")!;
      assert.ok(
        Number(offset) >= committed.get(Number(partition))!,
        `re-posted ${request.headers["x-request-id"]}`,
      );
    }
  } finally {
    second.signal("SIGTERM");
    assert.equal(await second.exited(), 0);
    await second.close();
  }
});
