/** Dead letters: written before the offset moves, keeping the original, and redriven by eventsink itself. */
import assert from "node:assert/strict";
import {
  committedOffsets,
  createTopic,
  endOffsets,
  killTestBroker,
  produce,
  startTestBroker,
  uniqueName,
} from "./support/broker.ts";
import { spawnEventsink } from "./support/eventsink_process.ts";
import { invalidVariants, loadFixtures } from "./support/fhir_variants.ts";
import { message, openPipeline, validMessages, waitUntil } from "./support/pipeline.ts";
import { headerText, readTopic } from "./support/topic_reader.ts";

const FHIR_JSON = "application/fhir+json; fhirVersion=4.0";

Deno.test("dead letters keep the original record and say why; a redrive re-posts the originals", async () => {
  await using p = await openPipeline(1);
  const deadLetterTopic = uniqueName("dead");
  await createTopic(p.bootstrap, deadLetterTopic, 1);
  const [good1, wronglyRejected, good2] = await validMessages(3);
  const invalid = message(invalidVariants((await loadFixtures())[0]!.bundle)[0]!.bundle);
  // The EventStore wrongly rejects one valid message until its rule is fixed (as after a bad deploy).
  p.store.faults.failMessage(wronglyRejected!.messageId, 422);
  const ownType = "application/fhir+json";
  const records: Array<{ key: string; value: Uint8Array; headers: Record<string, string> }> = [
    { key: good1!.messageId, value: good1!.bytes, headers: { "Content-Type": FHIR_JSON } },
    {
      key: wronglyRejected!.messageId,
      value: wronglyRejected!.bytes,
      headers: { "Content-Type": ownType, trace: "t-1" },
    },
    { key: invalid.messageId, value: invalid.bytes, headers: { "Content-Type": FHIR_JSON } },
    { key: good2!.messageId, value: good2!.bytes, headers: { "Content-Type": FHIR_JSON } },
  ];
  const positions = await produce(p.bootstrap, p.topic, records);

  const sink = await spawnEventsink({ ...p, args: ["--dead-letter-topic", deadLetterTopic] });
  try {
    await p.store.waitForStored(2, { timeoutMs: 30_000 });
    await waitUntil("all committed", async () => {
      return (await committedOffsets(p.bootstrap, p.group, p.topic)).get(0) === 4;
    });
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(), 0);
  } finally {
    await sink.close();
  }
  const letters = await readTopic(p.bootstrap, deadLetterTopic);
  assert.equal(letters.length, 2);
  for (const [letter, index] of [[letters[0]!, 1], [letters[1]!, 2]] as const) {
    assert.deepEqual(letter.value, records[index]!.value, "original value, byte for byte");
    assert.equal(new TextDecoder().decode(letter.key!), records[index]!.key);
    assert.equal(headerText(letter, "Content-Type"), records[index]!.headers["Content-Type"]);
    assert.equal(headerText(letter, "eventsink.source.topic"), p.topic);
    assert.equal(headerText(letter, "eventsink.source.partition"), "0");
    assert.equal(headerText(letter, "eventsink.source.offset"), String(positions[index]!.offset));
    assert.equal(headerText(letter, "eventsink.error.status"), "422");
    assert.equal(headerText(letter, "eventsink.error.attempts"), "1");
    assert.ok(Date.parse(headerText(letter, "eventsink.error.time")!) > Date.now() - 120_000);
    assert.match(headerText(letter, "eventsink.source.timestamp")!, /^\d+$/);
  }
  assert.equal(headerText(letters[0]!, "trace"), "t-1", "other original headers kept");
  // The reason is as logged, without quoted text (it may be the record's); the diagnostics are whole.
  assert.match(
    headerText(letters[1]!, "eventsink.error.reason")!,
    /EventStore answered 422: Bundle must be of type '…'/,
  );
  assert.equal(headerText(letters[1]!, "eventsink.error.diagnostics"), "Bundle must be of type 'Message'");

  // The rule is fixed: redrive the dead-letter topic with eventsink itself, in a group of its own.
  p.store.faults.reset();
  const redriveGroup = uniqueName("redrive");
  const redrive = await spawnEventsink({ ...p, topic: deadLetterTopic, group: redriveGroup });
  try {
    await waitUntil("the redrive committed both dead letters", async () => {
      return (await committedOffsets(p.bootstrap, redriveGroup, deadLetterTopic)).get(0) === 2;
    });
    redrive.signal("SIGTERM");
    assert.equal(await redrive.exited(), 0);
  } finally {
    await redrive.close();
  }
  const redriven = p.store.stored().find((s) => s.messageId === wronglyRejected!.messageId);
  assert.ok(redriven, "the wrongly rejected message is stored after the redrive");
  assert.deepEqual(redriven.body, wronglyRejected!.bytes);
  assert.equal(redriven.contentType, ownType, "with its original Content-Type");
  assert.ok(
    !Object.keys(redriven.headers).some((h) => h.startsWith("eventsink.")),
    "context headers not forwarded",
  );
  assert.ok(
    redrive.lines.some((l) => l.msg.startsWith("Skipped a rejected message") && l.status === 422),
    "the truly invalid one is rejected again, and skipped (no dead-letter topic on the redrive)",
  );
});

Deno.test("dead letters: a broker lost while one is written commits nothing past it; it appears once back", async () => {
  await using p = await openPipeline(1);
  const deadLetterTopic = uniqueName("dead");
  await createTopic(p.bootstrap, deadLetterTopic, 1);
  const [rejected, after] = await validMessages(2);
  p.store.faults.failMessage(rejected!.messageId, 422);
  p.store.faults.latency(3_000); // the broker goes while the rejected message's POST is in flight
  const [position] = await produce(p.bootstrap, p.topic, [
    { key: rejected!.messageId, value: rejected!.bytes },
    { key: after!.messageId, value: after!.bytes },
  ]);
  const sink = await spawnEventsink({ ...p, args: ["--dead-letter-topic", deadLetterTopic] });
  let brokerDown = false;
  try {
    await sink.waitForLog((l) => l.msg === "Partitions assigned" && l.partitions === "0");
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await killTestBroker();
    brokerDown = true;
    await sink.waitForLog((l) => l.msg === "Cannot write the dead letter, will retry", 90_000);
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    await startTestBroker();
    brokerDown = false;
    p.store.faults.latency(0);

    // Read the commit point first, then the dead-letter topic: a commit past the rejected record must
    // never be seen before its dead letter exists.
    await waitUntil("the record after it stored and committed", async () => {
      const committed = (await committedOffsets(p.bootstrap, p.group, p.topic)).get(0) ?? -1;
      const letters = await readTopic(p.bootstrap, deadLetterTopic);
      if (committed > position!.offset) {
        assert.ok(letters.length >= 1, `committed ${committed} without a dead letter`);
      }
      return committed === 2 && p.store.stored().some((s) => s.messageId === after!.messageId);
    }, 120_000);
    const letters = await readTopic(p.bootstrap, deadLetterTopic);
    assert.equal(letters.length, 1, "the dead letter is there exactly once");
    assert.deepEqual(letters[0]!.value, rejected!.bytes);
    assert.equal(
      sink.lines.filter((l) => l.msg === "Wrote a rejected message to the dead-letter topic").length,
      1,
    );
  } catch (error) {
    console.log(sink.output().split("\n").filter((l) => !l.includes('"Kafka: ')).slice(-60).join("\n"));
    throw error;
  } finally {
    if (brokerDown) await startTestBroker();
    sink.signal("SIGTERM");
    await sink.exited(60_000).catch(() => {});
    await sink.close();
  }
});

Deno.test("randomized: thousands of mixed records under random faults, every one accounted for by the rules", async () => {
  await using p = await openPipeline(4);
  const deadLetterTopic = uniqueName("dead");
  await createTopic(p.bootstrap, deadLetterTopic, 2);
  let seed = Number(Deno.env.get("EVENTSINK_TEST_SEED") ?? Date.now() % 100_000);
  console.log(`seed ${seed} (set EVENTSINK_TEST_SEED to repeat)`);
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

  const fixtures = await loadFixtures();
  const valid = await validMessages(1_500);
  const invalid = fixtures.flatMap((f) => invalidVariants(f.bundle).map((v) => JSON.stringify(v.bundle)));
  const hostile = [null, "", "not json at all", '{"a":1}', "[1,2]"];
  type Kind = "stored" | "dead-letter" | "skipped";
  const expected: Array<{ kind: Kind; messageId?: string; record: Parameters<typeof produce>[2][number] }> =
    [];
  for (const m of valid) {
    expected.push({ kind: "stored", messageId: m.messageId, record: { key: m.messageId, value: m.bytes } });
    if (random() < 0.25) {
      const bad = random() < 0.6 ? pick(invalid) : pick(hostile);
      const contentType = pick([FHIR_JSON, "application/json", undefined]);
      expected.push({
        kind: bad === null ? "skipped" : "dead-letter",
        record: {
          key: `bad-${expected.length}`,
          value: bad,
          headers: contentType ? { "Content-Type": contentType } : {},
        },
      });
    }
  }
  const positions = await produce(p.bootstrap, p.topic, expected.map((e) => e.record));

  const sink = await spawnEventsink({
    ...p,
    // One invalid variant is a response to a message that never comes: retried that long, then dead-lettered.
    args: ["--dead-letter-topic", deadLetterTopic, "--max-in-flight", "3", "--response-wait", "1s"],
  });
  const faults = setInterval(() => {
    const roll = random();
    if (roll < 0.3) {
      p.store.faults.script(Array.from({ length: 5 }, () => pick([503, 500, 429, "drop", "pass"] as const)));
    } else if (roll < 0.4) p.store.faults.latency(Math.floor(random() * 30));
    else p.store.faults.reset();
  }, 300);
  try {
    const ends = await endOffsets(p.bootstrap, p.topic);
    await waitUntil("every partition committed to its end", async () => {
      const committed = await committedOffsets(p.bootstrap, p.group, p.topic);
      return [...ends].every(([partition, end]) => committed.get(partition) === end);
    }, 240_000);
    clearInterval(faults);
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(), 0, "eventsink ran through without crashing");
  } finally {
    clearInterval(faults);
    await sink.close();
  }

  const stored = new Set(p.store.stored().map((s) => s.messageId));
  const letters = await readTopic(p.bootstrap, deadLetterTopic);
  const letterAt = new Set(
    letters.map((l) =>
      `${headerText(l, "eventsink.source.partition")}@${headerText(l, "eventsink.source.offset")}`
    ),
  );
  for (const [i, e] of expected.entries()) {
    const at = `${positions[i]!.partition}@${positions[i]!.offset}`;
    if (e.kind === "stored") assert.ok(stored.has(e.messageId!), `valid record ${at} not stored`);
    assert.equal(letterAt.has(at), e.kind === "dead-letter", `record ${at} (${e.kind}) dead-lettered?`);
  }
  const count = (kind: Kind) => expected.filter((e) => e.kind === kind).length;
  assert.equal(letters.length, count("dead-letter"), "no dead letter twice");
  const summary = sink.lines.find((l) => l.msg === "Stopped")!;
  assert.equal(summary.unfinished, 0);
  assert.equal(summary.deadLettered, count("dead-letter"));
  assert.equal(summary.skipped, count("skipped"));
  assert.equal(summary.delivered, count("stored"));
  assert.equal(summary.consumed, expected.length, "consumed = delivered + dead-lettered + skipped");
});
