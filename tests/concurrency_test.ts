/** Many records in flight: per-key order, commits that never pass an unfinished record, nothing lost. */
import assert from "node:assert/strict";
import { committedOffsets, endOffsets, kafkaClient, produce } from "./support/broker.ts";
import { type EventsinkProcess, spawnEventsink } from "./support/eventsink_process.ts";
import type { EventStore } from "./support/eventstore.ts";
import { openPipeline, validMessages, waitUntil } from "./support/pipeline.ts";

/** Request ids (`eventsink-<topic>-<partition>-<offset>`) the stand-in answered 2xx. */
function accepted(store: EventStore): Set<string> {
  return new Set(
    store.requests().filter((r) => r.status !== null && r.status < 300).map((r) =>
      r.headers["x-request-id"]!
    ),
  );
}

/**
 * Reads the group's committed offsets again and again; each time, every record below a committed offset
 * must already have been accepted by the stand-in. Returns a function that stops it and yields violations.
 */
function sampleCommits(p: { bootstrap: string; group: string; topic: string; store: EventStore }) {
  const admin = kafkaClient(p.bootstrap).admin();
  const violations: string[] = [];
  let running = true;
  let samples = 0;
  const loop = (async () => {
    await admin.connect();
    while (running) {
      const fetched = await admin.fetchOffsets({ groupId: p.group, topics: [p.topic] }).catch(() => []);
      const ok = accepted(p.store);
      for (const { partition, offset } of fetched[0]?.partitions ?? []) {
        for (let o = 0; o < Number(offset); o++) {
          if (!ok.has(`eventsink-${p.topic}-${partition}-${o}`)) {
            violations.push(`committed ${partition}@${offset} before ${partition}@${o} was accepted`);
            break;
          }
        }
      }
      samples++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })().finally(() => admin.disconnect());
  return async () => {
    running = false;
    await loop;
    return { violations, samples };
  };
}

Deno.test("concurrency: --ordering key under retries and a kill -9: per-key order, safe commits, nothing lost", async () => {
  await using p = await openPipeline(4);
  const messages = await validMessages(2_000);
  const keyOf = (i: number) => `patient-${i % 40}`;
  await produce(p.bootstrap, p.topic, messages.map((m, i) => ({ key: keyOf(i), value: m.bytes })));
  const indexOf = new Map(messages.map((m, i) => [m.messageId, i]));
  p.store.faults.latency(3);
  // Failures spread over the run make completions come back out of order.
  const faults = setInterval(() => p.store.faults.script([503, "pass", "pass", 500, "pass", 429]), 200);
  const args = ["--ordering", "key", "--max-in-flight", "64"];
  const stopSampling = sampleCommits(p);
  let sink: EventsinkProcess | undefined;
  try {
    sink = await spawnEventsink({ ...p, args });
    await waitUntil("about half stored", () => p.store.stored().length >= 900, 60_000);
    sink.signal("SIGKILL");
    await sink.exited();
    await sink.close();
    sink = await spawnEventsink({ ...p, args });
    const ends = await endOffsets(p.bootstrap, p.topic);
    await waitUntil("every partition committed to its end", async () => {
      const committed = await committedOffsets(p.bootstrap, p.group, p.topic);
      return [...ends].every(([partition, end]) => committed.get(partition) === end);
    }, 120_000);
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(), 0);
  } finally {
    clearInterval(faults);
    await sink?.close();
  }
  const { violations, samples } = await stopSampling();
  assert.ok(samples > 20, `only ${samples} samples`);
  assert.deepEqual(violations, [], "a commit passed a record the EventStore had not accepted");

  const stored = p.store.stored();
  assert.equal(new Set(stored.map((s) => s.messageId)).size, 2_000, "every message stored");
  const lastOfKey = new Map<string, number>();
  for (const s of stored) {
    const index = indexOf.get(s.messageId)!;
    const key = keyOf(index);
    assert.ok((lastOfKey.get(key) ?? -1) < index, `${key}: message ${index} stored after a later one`);
    lastOfKey.set(key, index);
  }
  const firstRun = stored.slice(0, 900).map((s) => indexOf.get(s.messageId)!);
  assert.ok(
    firstRun.some((index, i) => i > 0 && index < firstRun[i - 1]!),
    "records of different keys overlapped (stored out of produce order)",
  );
});

Deno.test("concurrency: --ordering none delivers everything with many in flight", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(600);
  await produce(p.bootstrap, p.topic, messages.map((m) => ({ key: null, value: m.bytes })));
  p.store.faults.latency(20);
  const sink = await spawnEventsink({ ...p, args: ["--ordering", "none", "--max-in-flight", "100"] });
  try {
    await p.store.waitForStored(600, { timeoutMs: 60_000 });
    // Each answer takes 20 ms: requests arriving within 15 ms of each other were in flight together.
    const arrivals = p.store.requests().map((r) => r.receivedAt.getTime()).sort((a, b) => a - b);
    const together = Math.max(
      ...arrivals.map((t, i) => arrivals.filter((u, j) => j >= i && u - t < 15).length),
    );
    assert.ok(together >= 10, `at most ${together} requests in flight together`);
  } finally {
    sink.signal("SIGTERM");
    await sink.exited();
    await sink.close();
  }
});

Deno.test("concurrency: heavy parallel load over HTTP/1.1 and over HTTP/2 (h2c) loses nothing", async (t) => {
  for (const protocol of ["http1", "http2"]) {
    await t.step(protocol, async () => {
      await using p = await openPipeline(4);
      const messages = await validMessages(2_000);
      await produce(p.bootstrap, p.topic, messages.map((m) => ({ key: m.messageId, value: m.bytes })));
      const args = [
        "--ordering",
        "key",
        "--max-in-flight",
        "256",
        ...(protocol === "http2" ? ["--http2"] : []),
      ];
      const sink = await spawnEventsink({ ...p, args });
      try {
        await p.store.waitForStored(2_000, { timeoutMs: 90_000 });
        sink.signal("SIGTERM");
        assert.equal(await sink.exited(), 0);
        assert.ok(!sink.lines.some((l) => l.msg === "Delivery failed, will retry"), "no request failed");
      } finally {
        await sink.close();
      }
    });
  }
});
