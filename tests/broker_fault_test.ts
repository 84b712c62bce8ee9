/**
 * Broker faults (issue 19): the shared broker killed (-9) and started again on the same port and data,
 * SIGTERM while it is down and during a group join, and a restart after eventsink itself was killed -9.
 * Times are asserted with generous bounds; nothing may be lost.
 */
import assert from "node:assert/strict";
import { committedOffsets, killTestBroker, produce, startTestBroker } from "./support/broker.ts";
import { type EventsinkProcess, spawnEventsink } from "./support/eventsink_process.ts";
import { type Message, openPipeline, type Pipeline, validMessages, waitUntil } from "./support/pipeline.ts";

/** `--shutdown-grace` of these tests, and the margin the README promises for the commit and the leave. */
const GRACE_MS = 5_000;
const MARGIN_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function produceAcross(p: Pipeline, messages: Message[], partitions: number): Promise<void> {
  for (let i = 0; i < messages.length; i += 100) {
    const chunk = messages.slice(i, i + 100);
    await produce(
      p.bootstrap,
      p.topic,
      chunk.map((m, j) => ({ value: m.bytes, partition: (i + j) % partitions })),
    );
  }
}

function storedIds(p: Pipeline): Set<string> {
  return new Set(p.store.stored().map((s) => s.messageId));
}

async function committedTotal(p: Pipeline): Promise<number> {
  return [...(await committedOffsets(p.bootstrap, p.group, p.topic)).values()].reduce((a, b) => a + b, 0);
}

/** SIGTERM; asserts exit 0 within the grace and the margin, with the `Stopped` line. */
async function assertCleanStop(sink: EventsinkProcess, what: string): Promise<void> {
  const at = Date.now();
  sink.signal("SIGTERM");
  const code = await sink.exited(GRACE_MS + MARGIN_MS + 30_000).catch((error) => error.message);
  const ms = Date.now() - at;
  const tail = sink.output().slice(-2500);
  assert.equal(code, 0, `${what}: exit code; output ends:\n${tail}`);
  assert.ok(ms <= GRACE_MS + MARGIN_MS, `${what}: exited ${ms} ms after SIGTERM; output ends:\n${tail}`);
  assert.ok(sink.lines.some((l) => l.msg === "Stopped"), `${what}: no Stopped line`);
}

function spawn(p: Pipeline, args: string[] = []): Promise<EventsinkProcess> {
  return spawnEventsink({ ...p, args: ["--shutdown-grace", `${GRACE_MS / 1000}s`, ...args] });
}

Deno.test("broker fault: after a kill -9 and a 25 s outage, deliveries and commits resume within 10 s of its return", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(40);
  await produceAcross(p, messages.slice(0, 20), 2);
  const sink = await spawn(p);
  try {
    await p.store.waitForStored(20, { timeoutMs: 30_000 });
    await waitUntil("committed to the end", async () => (await committedTotal(p)) === 20);
    await killTestBroker();
    await sleep(25_000);
    await startTestBroker();
    const back = Date.now();
    await produceAcross(p, messages.slice(20), 2);
    await waitUntil("the new records stored", () => storedIds(p).size === 40, 60_000);
    const storedMs = Date.now() - back;
    await waitUntil("committed to the end", async () => (await committedTotal(p)) === 40, 60_000);
    const committedMs = Date.now() - back;
    assert.ok(storedMs < 10_000, `deliveries resumed ${storedMs} ms after the broker's return`);
    assert.ok(committedMs < 10_000, `commits resumed ${committedMs} ms after the broker's return`);
    assert.ok(sink.lines.some((l) => l.msg === "Kafka is back"), "a line says when Kafka is back");
    await assertCleanStop(sink, "after the broker's return");
    assert.ok(messages.every((m) => storedIds(p).has(m.messageId)), "every record is stored");
  } finally {
    await startTestBroker();
    await sink.close();
  }
});

Deno.test("broker fault: SIGTERM while the broker is down stops within the grace period, exit 0", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(10);
  await produceAcross(p, messages, 2);
  const sink = await spawn(p);
  try {
    await p.store.waitForStored(10, { timeoutMs: 30_000 });
    await waitUntil("committed to the end", async () => (await committedTotal(p)) === 10);
    await killTestBroker();
    // KafkaJS notices and retries its requests, a few seconds apart.
    await sink.waitForLog((l) => l.level === "warn" && String(l.msg).startsWith("Kafka"), 30_000);
    await sleep(3_000);
    await assertCleanStop(sink, "broker down");
  } finally {
    await startTestBroker();
    await sink.close();
  }
});

Deno.test("broker fault: SIGTERM during a group join stops within the grace period, exit 0", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(10);
  await produceAcross(p, messages, 2);
  const killed = await spawn(p);
  await p.store.waitForStored(10, { timeoutMs: 30_000 });
  killed.signal("SIGKILL");
  await killed.exited();
  await killed.close();
  // The killed member's session is still open: the new member's join waits for it.
  const sink = await spawn(p);
  try {
    await sink.waitForLog((l) => / starting$/.test(l.msg), 20_000);
    await sleep(3_000);
    await assertCleanStop(sink, "joining");
  } finally {
    await sink.close();
  }
});

Deno.test("broker fault: a restart after kill -9 gets its partitions back soon and repeats about a second of work", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(1_500);
  await produceAcross(p, messages, 2);
  const rate = ["--max-rate", "200"];
  const first = await spawn(p, rate);
  await p.store.waitForStored(400, { timeoutMs: 60_000 });
  first.signal("SIGKILL");
  await first.exited();
  await first.close();
  const postedBefore = p.store.requests().length;
  const restartedAt = Date.now();
  const second = await spawn(p, rate);
  try {
    await waitUntil("the restarted member delivers", () => p.store.requests().length > postedBefore, 60_000);
    const backMs = Date.now() - restartedAt;
    await waitUntil("every record stored", () => storedIds(p).size === messages.length, 120_000);
    const counts = new Map<string, number>();
    for (const r of p.store.requests()) {
      const id = r.headers["x-request-id"] ?? "";
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const repeated = [...counts.values()].filter((n) => n > 1).length;
    // 200 records a second: about a second of work, plus what was in flight.
    assert.ok(repeated <= 300, `${repeated} records were posted again after the kill`);
    assert.ok(backMs < 20_000, `partitions came back ${backMs} ms after the restart`);
    await assertCleanStop(second, "after the restart");
  } finally {
    await second.close();
  }
});
