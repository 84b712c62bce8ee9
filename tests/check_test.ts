/** `eventsink check` against a real broker and the stand-in: a report per part, exit 0 or 1. */
import assert from "node:assert/strict";
import { produce } from "./support/broker.ts";
import { spawnEventsink, spawnRaw } from "./support/eventsink_process.ts";
import { startEventStore } from "./support/eventstore.ts";
import { openPipeline, type Pipeline, validMessages } from "./support/pipeline.ts";

async function check(args: string[]): Promise<{ code: number; report: string[] }> {
  const process = await spawnRaw(["check", ...args]);
  try {
    const code = await process.exited(60_000);
    // Columns are padded to the longest part name: compare with single spaces.
    return { code, report: process.output().trim().split("\n").map((line) => line.replace(/ +/g, " ")) };
  } finally {
    await process.close();
  }
}

function options(p: Pipeline, overrides: Record<string, string> = {}): string[] {
  const all = {
    brokers: p.bootstrap,
    topic: p.topic,
    group: p.group,
    "eventstore-url": p.store.url,
    ...overrides,
  };
  return Object.entries(all).flatMap(([name, value]) => [`--${name}`, value]);
}

/** A port with nothing listening on it. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  return listener.addr.port;
}

Deno.test("check: both ends pass; lag before and after eventsink ran", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(5);
  await produce(p.bootstrap, p.topic, messages.map((m, i) => ({ value: m.bytes, partition: i % 2 })));

  const before = await check(options(p));
  assert.equal(before.code, 0, before.report.join("\n"));
  assert.match(before.report[0]!, /^OK Kafka cluster \S+ answered; brokers 127\.0\.0\.1:\d+$/);
  assert.match(
    before.report[1]!,
    new RegExp(
      `^OK topic ${p.topic}: 2 partition\\(s\\): 0 \\(offsets 0–3, leader \\d+\\), 1 \\(offsets 0–2, leader \\d+\\)$`,
    ),
  );
  assert.match(
    before.report[2]!,
    new RegExp(
      `^OK consumer group ${p.group}: not created yet \\(no member has joined\\); lag 5 \\(0: 3, 1: 2\\); ` +
        "no committed offsets yet",
    ),
  );
  assert.equal(
    before.report[3],
    `OK EventStore GET ${p.store.url}/fhir/4.0/Bundle?_count=1 answered 200`,
  );
  assert.equal(before.report[4], "All 4 checks passed.");

  const sink = await spawnEventsink(p);
  try {
    await p.store.waitForStored(5, { timeoutMs: 30_000 });
    await sink.waitForLog((l) => l.msg === "Committed" && l.partition === 0 && l.offset === 3);
    await sink.waitForLog((l) => l.msg === "Committed" && l.partition === 1 && l.offset === 2);
    const during = await check(options(p));
    assert.equal(during.code, 0, during.report.join("\n"));
    assert.match(during.report[2]!, new RegExp(`${p.group}: Stable, 1 member; lag 0 \\(0: 0, 1: 0\\)$`));
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(), 0);
  } finally {
    await sink.close();
  }
});

Deno.test("check: each failing part is named with what to do, exit 1", async (t) => {
  await using p = await openPipeline(1);
  await t.step("Kafka unreachable: its parts are not checked, the EventStore still is", async () => {
    const { code, report } = await check(options(p, { brokers: `127.0.0.1:${closedPort()}` }));
    assert.equal(code, 1);
    assert.match(report[0]!, /^FAIL Kafka 127\.0\.0\.1:\d+ did not answer: /);
    assert.match(report[1]!, /^SKIPPED topic not checked: Kafka did not answer$/);
    assert.match(report[2]!, /^SKIPPED consumer group not checked: Kafka did not answer$/);
    assert.match(report[3]!, /^OK EventStore/);
    assert.equal(report[4], "1 of 4 checks failed, 2 skipped, 1 passed.");
  });
  await t.step("a topic and a dead-letter topic that do not exist", async () => {
    const { code, report } = await check([
      ...options(p, { topic: "no.such.topic" }),
      "--dead-letter-topic",
      "no.such.dlq",
    ]);
    assert.equal(code, 1);
    assert.deepEqual(report.slice(1, 4), [
      "FAIL topic no.such.topic does not exist",
      "FAIL dead-letter topic no.such.dlq does not exist",
      "SKIPPED consumer group not checked: topic no.such.topic not found",
    ]);
  });
  await t.step("the EventStore refuses eventsink's credentials (401)", async () => {
    await using store = await startEventStore({ token: "a-token-eventsink-does-not-have" });
    const { code, report } = await check(options(p, { "eventstore-url": store.url }));
    assert.equal(code, 1);
    assert.equal(
      report[3],
      `FAIL EventStore GET ${store.url}/fhir/4.0/Bundle?_count=1: EventStore answered 401 ` +
        "(check the EventStore credentials)",
    );
    assert.equal(report[4], "1 of 4 checks failed, 3 passed.");
  });
  await t.step("a wrong EventStore URL (404)", async () => {
    const { code, report } = await check(options(p, { "eventstore-url": `${p.store.url}/fhir/4.0` }));
    assert.equal(code, 1);
    assert.match(
      report[3]!,
      /EventStore answered 404.*\(check --eventstore-url: the base URL, without \/fhir\/4\.0\)$/,
    );
  });
  await t.step("the EventStore unreachable", async () => {
    const down = await check(options(p, { "eventstore-url": `http://127.0.0.1:${closedPort()}` }));
    assert.equal(down.code, 1);
    assert.match(
      down.report[3]!,
      /: Cannot reach the EventStore: .*: the EventStore is unreachable or unwell$/,
    );
  });
});

/** What eventsink says of https to a port that speaks plain HTTP (the stand-in's). */
const PLAIN_HTTP = "TLS: the server on that port speaks plain HTTP, not TLS: use https only if the server " +
  "does TLS (check the URL's scheme and port)";

Deno.test("check and run: https to a port that speaks plain HTTP is a configuration fault that says so", async () => {
  await using p = await openPipeline(1);
  const https = p.store.url.replace(/^http:/, "https:");
  const { code, report } = await check(options(p, { "eventstore-url": https }));
  assert.equal(code, 1);
  assert.ok(
    report[3]!.startsWith(
      `FAIL EventStore GET ${https}/fhir/4.0/Bundle?_count=1: Cannot connect to the EventStore: ${PLAIN_HTTP} (`,
    ),
    report[3],
  );
  assert.doesNotMatch(report[3]!, /unreachable or unwell/, "not taken for an outage");

  const [message] = await validMessages(1);
  await produce(p.bootstrap, p.topic, [{ value: message!.bytes }]);
  const sink = await spawnEventsink({ ...p, store: { url: https } });
  try {
    const fault = await sink.waitForLog((l) => l.msg.startsWith("Configuration fault"), 30_000);
    assert.ok(
      String(fault.reason).startsWith(`Cannot connect to the EventStore: ${PLAIN_HTTP} (`),
      fault.reason as string,
    );
    sink.signal("SIGTERM");
    await sink.exited();
  } finally {
    await sink.close();
  }
  assert.equal(p.store.stored().length, 0);
});
