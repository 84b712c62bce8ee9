/**
 * The HTTP endpoint of a running eventsink (issue 6): /healthz, /readyz through an EventStore outage and a
 * configuration fault, /metrics with exact counts (checked by promtool), and lag around a backlog.
 */
import assert from "node:assert/strict";
import {
  committedOffsetsByKafkaTool,
  createTopic,
  endOffsets,
  produce,
  type ProduceRecord,
  uniqueName,
} from "./support/broker.ts";
import { endpointUrl, type EventsinkProcess, spawnEventsink, spawnRaw } from "./support/eventsink_process.ts";
import { invalidVariants, loadFixtures, withNewIds } from "./support/fhir_variants.ts";
import { message, openPipeline, validMessages, waitUntil } from "./support/pipeline.ts";
import { promtoolCheckMetrics } from "./support/promtool.ts";
import { get, sample } from "./support/scrape.ts";
import { startEventStore } from "./support/eventstore.ts";

const WAIT_MS = 30_000;

async function stop(sink: EventsinkProcess): Promise<void> {
  sink.signal("SIGTERM");
  assert.equal(await sink.exited(), 0);
}

/** Waits until GET `path` answers `status` with a body matching `body`; returns that body. */
async function waitForAnswer(base: string, path: string, status: number, body: RegExp): Promise<string> {
  let last = { status: 0, body: "" };
  await waitUntil(`${path} answering ${status} ${body}`, async () => {
    last = await get(base, path);
    return last.status === status && body.test(last.body);
  }, WAIT_MS).catch((error) => {
    throw new Error(`${error.message}; last: ${last.status} ${last.body}`);
  });
  return last.body;
}

Deno.test("endpoints: /readyz is 503 with the reason during an EventStore outage and a credentials fault, and 200 again after", async () => {
  await using p = await openPipeline(2);
  const sink = await spawnEventsink(p);
  try {
    const base = await endpointUrl(sink);
    assert.equal((await get(base, "/healthz")).status, 200);
    await waitForAnswer(
      base,
      "/readyz",
      200,
      /^ok: consuming 2 partition\(s\) of .*EventStore not asked yet/,
    );
    assert.equal((await get(base, "/actuator/ready")).status, 200);

    p.store.faults.outage({ status: 503 });
    const messages = await validMessages(4);
    await produce(p.bootstrap, p.topic, messages.map((m, i) => ({ value: m.bytes, partition: i % 2 })));
    await waitForAnswer(base, "/readyz", 503, /^not ok: EventStore failing since \S+ \(answered 503\)\n$/);
    assert.equal((await get(base, "/actuator/ready")).status, 503, "the original's path agrees");
    assert.equal(sample((await get(base, "/metrics")).body, "eventsink_ready"), 0);
    const live = await get(base, "/healthz");
    assert.deepEqual([live.status, live.body], [200, "ok: consuming\n"], "alive all the same");

    p.store.faults.outage({ status: 401 });
    await waitForAnswer(
      base,
      "/readyz",
      503,
      /EventStore refuses requests since \S+ \(answered 401\): check/,
    );

    p.store.faults.reset();
    await p.store.waitForStored(4, { timeoutMs: WAIT_MS });
    await waitForAnswer(base, "/readyz", 200, /EventStore answering/);
    assert.equal(sample((await get(base, "/metrics")).body, "eventsink_ready"), 1);
    await stop(sink);
  } finally {
    await sink.close();
  }
});

Deno.test("endpoints: /metrics counts exactly what was produced and what became of it; promtool agrees", async () => {
  await using p = await openPipeline(2);
  const deadLetterTopic = uniqueName("dlq");
  await createTopic(p.bootstrap, deadLetterTopic, 1);
  const valid = await validMessages(6);
  const fixtures = await loadFixtures();
  const invalid = fixtures.slice(0, 2).map((f) => message(invalidVariants(withNewIds(f.bundle))[0]!.bundle));
  const records: ProduceRecord[] = [
    ...valid.map((m, i) => ({ value: m.bytes, partition: i % 2 })),
    ...invalid.map((m, i) => ({ value: m.bytes, partition: i % 2 })),
    { value: null, key: "tombstone", partition: 0 },
  ];
  // The first two POSTs fail (503): two retries; each record is then answered once.
  p.store.faults.script([503, 503]);
  const startedAt = Date.now() / 1000;
  await produce(p.bootstrap, p.topic, records);
  const sink = await spawnEventsink({ ...p, args: ["--dead-letter-topic", deadLetterTopic] });
  try {
    const base = await endpointUrl(sink);
    const ends = await endOffsets(p.bootstrap, p.topic);
    const t = `topic="${p.topic}"`;
    let text = "";
    await waitUntil("every record accounted for and committed", async () => {
      text = (await get(base, "/metrics")).body;
      return [...ends].every(([partition, end]) =>
        sample(text, `eventsink_committed_offset{${t},partition="${partition}"}`) === end
      ) && sample(text, `eventsink_records_consumed_total{${t}}`) === 9;
    }, WAIT_MS);

    const expected: Record<string, number> = {
      [`eventsink_records_consumed_total{${t}}`]: 9,
      [`eventsink_records_delivered_total{${t}}`]: 6,
      [`eventsink_records_dead_lettered_total{${t}}`]: 2,
      [`eventsink_records_skipped_total{${t}}`]: 1,
      [`eventsink_records_deleted_total{${t}}`]: 0,
      'eventsink_eventstore_requests_total{status_class="2xx"}': 6,
      'eventsink_eventstore_requests_total{status_class="4xx"}': 2,
      'eventsink_eventstore_requests_total{status_class="5xx"}': 2,
      "eventsink_eventstore_request_duration_seconds_count": 10,
      'eventsink_eventstore_request_duration_seconds_bucket{le="+Inf"}': 10,
      "eventsink_delivery_retries_total": 2,
      [`eventsink_records_in_flight{${t},partition="0"}`]: 0,
      [`eventsink_records_in_flight{${t},partition="1"}`]: 0,
      [`eventsink_consumer_lag{${t},partition="0"}`]: 0,
      [`eventsink_consumer_lag{${t},partition="1"}`]: 0,
      "eventsink_ready": 1,
    };
    for (const [series, value] of Object.entries(expected)) {
      assert.equal(sample(text, series), value, `${series}\n${text}`);
    }
    assert.deepEqual(
      p.store.stats().byStatus,
      { "202": 6, "422": 2, "503": 2 },
      "the stand-in counted the same requests",
    );
    const lastDelivery = sample(text, "eventsink_last_delivery_timestamp_seconds")!;
    assert.ok(
      lastDelivery >= startedAt && lastDelivery <= Date.now() / 1000,
      `last delivery ${lastDelivery}`,
    );
    assert.match(
      text,
      /^eventsink_build_info\{eventsink="[^"]+",deno="[^"]+",v8="[^"]+",typescript="[^"]+",kafkajs="2\.2\.4"\} 1$/m,
    );

    const checked = await promtoolCheckMetrics(text);
    assert.ok(checked.ok && checked.output.trim() === "", `promtool: ${checked.output}`);
    const alias = await get(base, "/actuator/metrics");
    assert.equal(alias.type, "text/plain; version=0.0.4; charset=utf-8");
    assert.equal(sample(alias.body, `eventsink_records_delivered_total{${t}}`), 6);

    await stop(sink);
    const stopped = sink.lines.find((l) => l.msg === "Stopped")!;
    assert.deepEqual(
      [stopped.consumed, stopped.delivered, stopped.deadLettered, stopped.skipped, stopped.retries],
      [9, 6, 2, 1, 2],
      "the Stopped line tells the same",
    );
  } finally {
    await sink.close();
  }
});

Deno.test("endpoints: lag counts a backlog while the EventStore is down, grows with new records, and is 0 once drained", async () => {
  await using p = await openPipeline(1);
  const messages = await validMessages(30);
  const records = (from: number, to: number) => messages.slice(from, to).map((m) => ({ value: m.bytes }));
  p.store.faults.outage({ status: 503 });
  await produce(p.bootstrap, p.topic, records(0, 20));
  const sink = await spawnEventsink(p);
  try {
    const base = await endpointUrl(sink);
    const lag = `eventsink_consumer_lag{topic="${p.topic}",partition="0"}`;
    const committed = `eventsink_committed_offset{topic="${p.topic}",partition="0"}`;
    const waitForLag = (expected: number) =>
      waitUntil(
        `lag ${expected}`,
        async () => sample((await get(base, "/metrics")).body, lag) === expected,
        WAIT_MS,
      );

    await waitForLag(20);
    // Records written while the partition waits: no batch tells of them, the log-end poll does.
    await produce(p.bootstrap, p.topic, records(20, 30));
    await waitForLag(30);
    assert.equal(sample((await get(base, "/metrics")).body, committed), undefined, "nothing committed yet");

    p.store.faults.reset();
    await waitForLag(0);
    await waitUntil(
      "committed to the end",
      async () => sample((await get(base, "/metrics")).body, committed) === 30,
    );
    const [row] = await committedOffsetsByKafkaTool(p.bootstrap, p.group);
    assert.deepEqual(
      [row!.currentOffset, row!.logEndOffset, row!.lag],
      [30, 30, 0],
      "Kafka's own tool agrees",
    );
    await stop(sink);
  } finally {
    await sink.close();
  }
});

Deno.test("endpoints: 404 and 405; --http-listen off; an address in use is named at start-up (exit 1)", async () => {
  await using p = await openPipeline(1);
  const sink = await spawnEventsink(p);
  try {
    const base = await endpointUrl(sink);
    assert.equal((await get(base, "/nothing")).status, 404);
    const post = await fetch(`${base}/metrics`, { method: "POST" });
    await post.body?.cancel();
    assert.deepEqual([post.status, post.headers.get("allow")], [405, "GET, HEAD"]);

    const port = new URL(base).port;
    const busy = await spawnRaw([
      "--brokers",
      p.bootstrap,
      "--topic",
      p.topic,
      "--eventstore-url",
      p.store.url,
      "--http-listen",
      `127.0.0.1:${port}`,
      "--log-format",
      "json",
    ]);
    try {
      assert.equal(await busy.exited(), 1);
      assert.match(busy.output(), new RegExp(`Cannot start: cannot listen on 127\\.0\\.0\\.1:${port}: `));
    } finally {
      await busy.close();
    }
    await stop(sink);
  } finally {
    await sink.close();
  }
  const off = await spawnEventsink({ ...p, args: ["--http-listen", "off"] });
  try {
    await off.waitForLog((l) => l.msg === "Partitions assigned");
    assert.ok(!off.lines.some((l) => l.msg === "HTTP endpoint listening"));
    await stop(off);
  } finally {
    await off.close();
  }
});

Deno.test("readiness: an idle sink notices the EventStore going away within a minute, and its return", async () => {
  await using p = await openPipeline(1);
  const port = Number(new URL(p.store.url).port);
  const sink = await spawnEventsink(p);
  try {
    const base = await endpointUrl(sink);
    await waitUntil("ready while idle", async () => (await get(base, "/readyz")).status === 200);
    await p.store.close();
    const stoppedAt = performance.now();
    await waitUntil("unready", async () => (await get(base, "/readyz")).status === 503, 75_000);
    const fellS = (performance.now() - stoppedAt) / 1000;
    assert.ok(fellS <= 61, `readiness fell ${fellS.toFixed(1)} s after the EventStore went away`);
    assert.match((await get(base, "/readyz")).body, /EventStore unreachable since/);
    await using back = await startEventStore({ port });
    await waitUntil("ready again", async () => (await get(base, "/readyz")).status === 200, 45_000);
    assert.ok(back.requests().some((r) => r.method === "GET"), "a probe found it back");
    assert.equal(back.requests().some((r) => r.method === "POST"), false, "no record was posted");
  } finally {
    await sink.close();
  }
});
