/**
 * Poison records: one the EventStore answers 500 on every attempt (a reused Bundle.id, as the real store
 * answers it) while it takes the others is dead-lettered after the bound; an outage never is.
 */
import assert from "node:assert/strict";
import { createTopic, endOffsets, produce, uniqueName } from "./support/broker.ts";
import { endpointUrl, type EventsinkProcess, spawnEventsink } from "./support/eventsink_process.ts";
import {
  type Message,
  message,
  openPipeline,
  validMessages,
  waitUntil,
  waitUntilCommittedToEnd,
} from "./support/pipeline.ts";
import { get, sample } from "./support/scrape.ts";
import { headerText, readTopic } from "./support/topic_reader.ts";

const FHIR_JSON = { "Content-Type": "application/fhir+json" };
const FAST_RETRIES = ["--retry-initial", "100ms", "--retry-max", "500ms"];
/** Short bounds, so that the test takes seconds; the defaults are 5m and 10 attempts. */
const POISON_ARGS = ["--poison-after", "3s", "--poison-attempts", "3", ...FAST_RETRIES];

/** A pipeline with a dead-letter topic and `count` valid messages produced over its partitions. */
async function openWithMessages(partitions: number, count: number) {
  const p = await openPipeline(partitions);
  const deadLetterTopic = uniqueName("dead");
  await createTopic(p.bootstrap, deadLetterTopic, 1);
  const valid = await validMessages(count);
  const records = valid.map((m, i) => ({ value: m.bytes, headers: FHIR_JSON, partition: i % partitions }));
  await produce(p.bootstrap, p.topic, records);
  return { p, deadLetterTopic, valid };
}

/**
 * eventsink on a pipeline, dead-lettering to `deadLetterTopic`, with `args` (the short bounds unless given)
 * and `ordering` as spawnEventsink takes it.
 */
function spawnPoisonSink(
  p: Awaited<ReturnType<typeof openPipeline>>,
  deadLetterTopic: string,
  options: { args?: string[]; ordering?: string | null } = {},
): Promise<EventsinkProcess> {
  const args = ["--dead-letter-topic", deadLetterTopic, ...(options.args ?? POISON_ARGS)];
  return spawnEventsink({ ...p, args, ordering: options.ordering });
}

/** A new valid message reusing `stored`'s Bundle.id: the real store answers it 500 on every attempt. */
async function reusingBundleIdOf(stored: Message): Promise<Message> {
  return message({ ...(await validMessages(1))[0]!.bundle, id: stored.bundle.id });
}

/** Every message was stored and committed, none dead-lettered or counted poison; a SIGTERM stops it. */
async function assertAllDelivered(
  { p, deadLetterTopic, valid }: Awaited<ReturnType<typeof openWithMessages>>,
  sink: EventsinkProcess,
): Promise<void> {
  await waitUntilCommittedToEnd(p.bootstrap, p.group, p.topic, 60_000);
  assert.equal(p.store.stored().length, valid.length);
  assert.equal((await endOffsets(p.bootstrap, deadLetterTopic)).get(0), 0, "no dead letter");
  await assertPoisonedThenStop(sink, 0);
}

/**
 * Lets eventsink meet a fault for `faultMs`, checks `whileFaulty`, heals the fault, then checks that every
 * message was delivered and none dead-lettered; the sink is closed in any case.
 */
async function assertDeliveredAfterFault(
  run: Awaited<ReturnType<typeof openWithMessages>>,
  sink: EventsinkProcess,
  fault: { faultMs: number; whileFaulty?: () => void; heal: () => void },
): Promise<void> {
  try {
    await new Promise((resolve) => setTimeout(resolve, fault.faultMs));
    fault.whileFaulty?.();
    fault.heal();
    await assertAllDelivered(run, sink);
  } finally {
    await sink.close();
  }
}

/** The metric counts `poisoned` poison records, and eventsink then stops cleanly on SIGTERM. */
async function assertPoisonedThenStop(sink: EventsinkProcess, poisoned: number): Promise<void> {
  const { body } = await get(await endpointUrl(sink), "/metrics");
  assert.equal(sample(body, "eventsink_records_poisoned_total"), poisoned);
  sink.signal("SIGTERM");
  assert.equal(await sink.exited(), 0);
}

Deno.test("poison: a reused Bundle.id among 1,000 on one partition is dead-lettered with the store's 500; the rest delivered", async () => {
  await using p = await openPipeline(1);
  const deadLetterTopic = uniqueName("dead");
  await createTopic(p.bootstrap, deadLetterTopic, 1);
  const valid = await validMessages(1_000);
  const reused = await reusingBundleIdOf(valid[10]!);
  const records = valid.map((m) => ({ key: m.messageId, value: m.bytes, headers: FHIR_JSON }));
  records.splice(500, 0, { key: reused.messageId, value: reused.bytes, headers: FHIR_JSON });
  // In batches: one produce request of all of them would exceed the broker's message size.
  for (let i = 0; i < records.length; i += 100) {
    await produce(p.bootstrap, p.topic, records.slice(i, i + 100));
  }

  const started = performance.now();
  const sink = await spawnPoisonSink(p, deadLetterTopic);
  try {
    await waitUntilCommittedToEnd(p.bootstrap, p.group, p.topic, 120_000);
    const tookS = (performance.now() - started) / 1000;
    assert.equal(p.store.stored().length, 1_000);
    const [letter, ...more] = await readTopic(p.bootstrap, deadLetterTopic);
    assert.deepEqual(more, []);
    assert.deepEqual(letter!.value, reused.bytes);
    assert.equal(headerText(letter!, "eventsink.error.status"), "500");
    assert.match(
      headerText(letter!, "eventsink.error.reason")!,
      /while the EventStore worked, so it is taken as rejected \(--poison-after\): EventStore answered 500: org\.postgresql\.util\.PSQLException: ERROR: duplicate key value violates unique constraint/,
    );
    assert.ok(Number(headerText(letter!, "eventsink.error.attempts")) >= 3);
    assert.ok(tookS < 60, `the partition moved on within the bound (${tookS.toFixed(1)} s)`);
    await assertPoisonedThenStop(sink, 1);
  } finally {
    await sink.close();
  }
});

Deno.test("poison: two reused Bundle.ids at once, with nothing else to deliver, are both dead-lettered", async () => {
  // A faulty producer's records, alone in a quiet topic: each fails while the other does, and nothing is
  // stored meanwhile. The store's 500 names the unique constraint the record breaks: the store works.
  const run = await openWithMessages(2, 4);
  await using p = run.p;
  const sink = await spawnPoisonSink(p, run.deadLetterTopic);
  try {
    await waitUntilCommittedToEnd(p.bootstrap, p.group, p.topic, 60_000);
    const reused = await Promise.all(run.valid.slice(0, 2).map(reusingBundleIdOf));
    await produce(
      p.bootstrap,
      p.topic,
      reused.map((m, i) => ({ value: m.bytes, headers: FHIR_JSON, partition: i })),
    );
    await waitUntilCommittedToEnd(p.bootstrap, p.group, p.topic, 60_000);
    const letters = await readTopic(p.bootstrap, run.deadLetterTopic);
    assert.deepEqual(
      letters.map((letter) => new TextDecoder().decode(letter.value!)).sort(),
      reused.map((m) => new TextDecoder().decode(m.bytes)).sort(),
    );
    assert.equal(p.store.stored().length, 4);
    await assertPoisonedThenStop(sink, 2);
  } finally {
    await sink.close();
  }
});

Deno.test("poison: an outage of every request (the probe's too) dead-letters nothing; all delivered after it", async () => {
  // One partition in partition order: one record fails at a time, alone, so the probe is what decides.
  const run = await openWithMessages(1, 40);
  await using p = run.p;
  p.store.faults.outage({ status: 503 });
  const sink = await spawnPoisonSink(p, run.deadLetterTopic);
  // Past the bound several times over: each record was tried often, and the probe was asked.
  await assertDeliveredAfterFault(run, sink, {
    faultMs: 12_000,
    whileFaulty: () =>
      assert.ok(
        p.store.requests().some((r) => r.method === "GET" && r.status === 503),
        "the probe was asked",
      ),
    heal: () => p.store.faults.outage(null),
  });
});

Deno.test("poison: a store that cannot write (500 to every message) but answers its search dead-letters nothing", async () => {
  const run = await openWithMessages(2, 40);
  await using p = run.p;
  // As the real store on a read-only PostgreSQL: "cannot execute INSERT in a read-only transaction".
  for (const m of run.valid) p.store.faults.failMessage(m.messageId, 500);
  const sink = await spawnPoisonSink(p, run.deadLetterTopic, { ordering: null });
  await assertDeliveredAfterFault(run, sink, {
    faultMs: 12_000,
    heal: () => run.valid.forEach((m) => p.store.faults.failMessage(m.messageId, null)),
  });
});

Deno.test("poison: alone on one partition, a record the store cannot write (read-only PostgreSQL) is not poison", async () => {
  // Nothing else is tried meanwhile, so the probe alone would say the store works: its text says otherwise.
  const run = await openWithMessages(1, 10);
  await using p = run.p;
  p.store.faults.writeFailure(
    "org.postgresql.util.PSQLException: ERROR: cannot execute INSERT in a read-only transaction",
  );
  // Bounds the probe alone meets within the outage: two attempts after two probes 10 s apart.
  const bounds = ["--poison-after", "2s", "--poison-attempts", "2", ...FAST_RETRIES];
  const sink = await spawnPoisonSink(p, run.deadLetterTopic, { args: bounds });
  await assertDeliveredAfterFault(run, sink, {
    faultMs: 20_000,
    whileFaulty: () => {
      const failed = sink.lines.filter((line) => /read-only transaction/.test(String(line.reason)));
      assert.ok(failed.length > 0, "eventsink was answered the store's 500");
    },
    heal: () => p.store.faults.writeFailure(null),
  });
});

Deno.test("poison: after a stall longer than the bound, retries that raced their first attempts (500) are not poison", async () => {
  const run = await openWithMessages(2, 10);
  await using p = run.p;
  // A frozen store (as under SIGSTOP) keeps every request; resumed, it works through the first attempts and
  // the retries together, and each later copy's insert fails on the Bundle.id constraint.
  p.store.faults.apply({ stalled: true, latencyMs: 200 });
  const sink = await spawnPoisonSink(p, run.deadLetterTopic, {
    ordering: null,
    args: ["--request-timeout", "1s", ...POISON_ARGS],
  });
  try {
    await waitUntil("the first attempts held", () => p.store.stats().held >= run.valid.length, 30_000);
    // Longer than the bound, and than the probe's outcome stands (PROBE_GAP_MS), as a real freeze can be.
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    // Resumed right after a round of retries came, so that those are still waited for.
    const held = p.store.stats().held;
    await waitUntil("a round of retries held", () => p.store.stats().held > held, 10_000);
    p.store.faults.stall(false);
    await assertAllDelivered(run, sink);
    const raced = sink.lines.filter((line) =>
      line.msg === "Delivery failed, will retry" &&
      /duplicate key value violates unique constraint/.test(String(line.reason))
    );
    assert.ok(raced.length > 0, "eventsink was answered the race's 500");
  } finally {
    await sink.close();
  }
});
