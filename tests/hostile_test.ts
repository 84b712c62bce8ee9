/** Whatever is on the topic, every record ends accounted for, and the records after it are delivered. */
import assert from "node:assert/strict";
import { endOffsets, kafkaClient, produce, type ProduceRecord, uniqueName } from "./support/broker.ts";
import { spawnEventsink } from "./support/eventsink_process.ts";
import { openPipeline, type Pipeline, validMessages, waitUntil } from "./support/pipeline.ts";
import { headerText, readTopic } from "./support/topic_reader.ts";
import { committedOffsets } from "./support/broker.ts";
import { loadFixtures, withNewIds } from "./support/fhir_variants.ts";

const FHIR_JSON = "application/fhir+json; fhirVersion=4.0";
const encoder = new TextEncoder();

/** Creates a topic that takes records of up to 20 MB (the broker's default is 1 MB). */
async function createLargeTopic(bootstrap: string, topic: string): Promise<void> {
  const admin = kafkaClient(bootstrap).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{
        topic,
        numPartitions: 1,
        configEntries: [{ name: "max.message.bytes", value: "20000000" }],
      }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

/**
 * A message padded to about `bytes` bytes with a Questionnaire title and contact names of `stringBytes` each: valid while
 * those stay within the EventStore's limit for a FHIR string, 1 MiB.
 */
async function paddedMessage(
  bytes: number,
  stringBytes: number,
): Promise<{ value: Uint8Array; messageId: string }> {
  const [fixture] = await loadFixtures();
  const bundle = withNewIds(fixture!.bundle);
  const questionnaire = bundle.entry!.find((e) => e.resource?.resourceType === "Questionnaire")!.resource!;
  const titles = Math.ceil(bytes / stringBytes);
  questionnaire.title = "x".repeat(stringBytes);
  questionnaire.contact = Array.from({ length: titles - 1 }, () => ({ name: "x".repeat(stringBytes) }));
  const header = bundle.entry![0]!.resource!;
  return { value: encoder.encode(JSON.stringify(bundle)), messageId: String(header.id) };
}

type Expected = "stored" | "dead-letter" | "skipped";

interface Case {
  name: string;
  record: ProduceRecord;
  expected: Expected;
  /** For dead letters: HTTP status, or undefined when eventsink rejected the record itself (no POST). */
  status?: number;
  messageId?: string;
}

async function hostileCases(): Promise<Case[]> {
  const valid = await validMessages(10);
  const v = (i: number) => valid[i]!;
  const big = await paddedMessage(6_000_000, 1_000_000);
  const longString = await paddedMessage(1_100_000, 1_100_000);
  const ct = { "Content-Type": FHIR_JSON };
  return [
    {
      name: "valid",
      record: { key: v(0).messageId, value: v(0).bytes, headers: ct },
      expected: "stored",
      messageId: v(0).messageId,
    },
    {
      name: "tombstone (null value)",
      record: { key: "gone", value: null, headers: ct },
      expected: "skipped",
    },
    {
      name: "empty value",
      record: { key: "empty", value: new Uint8Array(), headers: ct },
      expected: "dead-letter",
    },
    {
      name: "not UTF-8",
      record: { key: "bytes", value: new Uint8Array([0xff, 0xfe, 0x00, 0x81]), headers: ct },
      expected: "dead-letter",
    },
    {
      name: "not JSON",
      record: { key: "text", value: "name=Kari Nordmann; fnr=12345678901", headers: ct },
      expected: "dead-letter",
    },
    {
      name: "JSON, not FHIR",
      record: { key: "json", value: '{"hello":"world"}', headers: ct },
      expected: "dead-letter",
    },
    {
      // The EventStore answers 500 to it on every attempt: posted, it would hold the partition.
      name: "a FHIR resource that is not a Bundle",
      record: { key: "patient", value: '{"resourceType":"Patient","id":"kari-nordmann"}', headers: ct },
      expected: "dead-letter",
    },
    {
      name: "FHIR XML",
      record: {
        key: "xml",
        value: '<Bundle xmlns="http://hl7.org/fhir"><type value="message"/></Bundle>',
        headers: { "Content-Type": "application/fhir+xml" },
      },
      expected: "dead-letter",
      status: 415,
    },
    {
      name: "no Content-Type",
      record: { key: v(1).messageId, value: v(1).bytes },
      expected: "stored",
      messageId: v(1).messageId,
    },
    {
      name: "two equal Content-Type headers",
      record: { key: v(2).messageId, value: v(2).bytes, headers: { "Content-Type": [FHIR_JSON, FHIR_JSON] } },
      expected: "stored",
      messageId: v(2).messageId,
    },
    {
      name: "two different Content-Type headers",
      record: {
        key: v(3).messageId,
        value: v(3).bytes,
        headers: { "Content-Type": [FHIR_JSON, "application/fhir+xml"] },
      },
      expected: "dead-letter",
    },
    {
      name: "Content-Type not valid for HTTP",
      record: {
        key: v(4).messageId,
        value: v(4).bytes,
        headers: { "Content-Type": "application/fhir+json\r\nX-Injected: 1" },
      },
      expected: "dead-letter",
    },
    {
      name: "null key",
      record: { key: null, value: v(5).bytes, headers: ct },
      expected: "stored",
      messageId: v(5).messageId,
    },
    {
      name: "binary key",
      record: { key: new Uint8Array([0, 1, 2, 0xff]), value: v(6).bytes, headers: ct },
      expected: "stored",
      messageId: v(6).messageId,
    },
    {
      name: "a string of 1.1 MB (over the EventStore's limit for one)",
      record: { key: longString.messageId, value: longString.value, headers: ct },
      expected: "dead-letter",
      status: 422,
    },
    {
      name: "6 MB (over KafkaJS's default fetch size; the EventStore has no size limit)",
      record: { key: big.messageId, value: big.value, headers: ct },
      expected: "stored",
      messageId: big.messageId,
    },
    {
      name: "valid after all that",
      record: { key: v(7).messageId, value: v(7).bytes, headers: ct },
      expected: "stored",
      messageId: v(7).messageId,
    },
  ];
}

async function withDeadLetterTopic(p: Pipeline): Promise<string> {
  const topic = uniqueName("dead");
  await createLargeTopic(p.bootstrap, topic);
  return topic;
}

Deno.test("hostile records: each has its documented outcome, and the records after it are delivered", async () => {
  await using p = await openPipeline(1);
  const topic = uniqueName("hostile");
  await createLargeTopic(p.bootstrap, topic);
  const deadLetterTopic = await withDeadLetterTopic(p);
  const cases = await hostileCases();
  const positions = await produce(p.bootstrap, topic, cases.map((c) => c.record));
  const sink = await spawnEventsink({ ...p, topic, args: ["--dead-letter-topic", deadLetterTopic] });
  try {
    const ends = await endOffsets(p.bootstrap, topic);
    await waitUntil("every record committed", async () => {
      return (await committedOffsets(p.bootstrap, p.group, topic)).get(0) === ends.get(0);
    }, 60_000);
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(), 0);
  } finally {
    await sink.close();
  }

  const stored = new Map(p.store.stored().map((s) => [s.messageId, s]));
  const deadLetters = await readTopic(p.bootstrap, deadLetterTopic);
  const posted = new Set(p.store.requests().map((r) => r.headers["x-request-id"]));
  for (const [i, c] of cases.entries()) {
    const offset = positions[i]!.offset;
    const letter = deadLetters.find((d) => headerText(d, "eventsink.source.offset") === String(offset));
    if (c.expected === "stored") {
      assert.ok(stored.has(c.messageId!), `${c.name}: not stored`);
      assert.deepEqual(stored.get(c.messageId!)!.body, toBytes(c.record.value), `${c.name}: body`);
      assert.equal(letter, undefined, `${c.name}: dead-lettered`);
    } else if (c.expected === "skipped") {
      assert.equal(letter, undefined, `${c.name}: dead-lettered`);
      assert.ok(!posted.has(`eventsink-${topic}-0-${offset}`), `${c.name}: posted`);
    } else {
      assert.ok(letter, `${c.name}: no dead letter`);
      assert.deepEqual(letter.value, toBytes(c.record.value), `${c.name}: dead letter value`);
      assert.deepEqual(letter.key, toBytes(c.record.key ?? null), `${c.name}: dead letter key`);
      assert.equal(headerText(letter, "eventsink.source.topic"), topic);
      assert.equal(headerText(letter, "eventsink.source.partition"), "0");
      assert.equal(
        headerText(letter, "eventsink.error.status"),
        c.status === undefined ? undefined : String(c.status),
      );
      assert.ok(headerText(letter, "eventsink.error.reason"), `${c.name}: no reason`);
      assert.match(headerText(letter, "eventsink.version")!, /^\d+\.\d+\.\d+/);
      assert.equal(
        posted.has(`eventsink-${topic}-0-${offset}`),
        c.status !== undefined,
        `${c.name}: posted?`,
      );
      for (const [name, values] of Object.entries(c.record.headers ?? {})) {
        const expected = (Array.isArray(values) ? values : [values]).map((x) => toBytes(x));
        assert.deepEqual(letter.headers[name], expected, `${c.name}: original header ${name}`);
      }
    }
  }
  assert.equal(
    deadLetters.length,
    cases.filter((c) => c.expected === "dead-letter").length,
    "one dead letter each",
  );

  const summary = sink.lines.find((l) => l.msg === "Stopped")!;
  const count = (e: Expected) => cases.filter((c) => c.expected === e).length;
  assert.deepEqual(
    [summary.consumed, summary.delivered, summary.deadLettered, summary.skipped, summary.unfinished],
    [cases.length, count("stored"), count("dead-letter"), count("skipped"), 0],
    "consumed = delivered + dead-lettered + skipped",
  );
  const output = sink.output();
  assert.ok(
    !output.includes("Kari Nordmann") && !output.includes("12345678901"),
    "a record value was logged",
  );
});

function toBytes(value: Uint8Array | string | null): Uint8Array | null {
  if (value === null) return null;
  return typeof value === "string" ? encoder.encode(value) : value;
}

const CODECS = ["gzip", "snappy", "lz4", "zstd"] as const;

Deno.test("compression: batches written by librdkafka (kcat) with gzip, snappy, lz4 and zstd are consumed", async () => {
  await using p = await openPipeline(1);
  const messages = await validMessages(CODECS.length * 5);
  for (const [i, codec] of CODECS.entries()) {
    const batch = messages.slice(i * 5, i * 5 + 5);
    // One line per record (compact JSON), so that kcat's newline delimiter splits them; the key before a tab.
    const lines = batch.map((m) => `${m.messageId}\t${JSON.stringify(m.bundle)}`).join("\n") + "\n";
    const kcat = new Deno.Command("kcat", {
      args: [
        "-P",
        "-b",
        p.bootstrap,
        "-t",
        p.topic,
        "-z",
        codec,
        "-K",
        "\t",
        "-H",
        `Content-Type=${FHIR_JSON}`,
      ],
      stdin: "piped",
      stderr: "piped",
    }).spawn();
    const writer = kcat.stdin.getWriter();
    await writer.write(encoder.encode(lines));
    await writer.close();
    const { code, stderr } = await kcat.output();
    assert.equal(code, 0, `kcat -z ${codec}: ${new TextDecoder().decode(stderr)}`);
  }
  const sink = await spawnEventsink(p);
  try {
    await p.store.waitForStored(messages.length, { timeoutMs: 30_000 });
    const stored = new Map(p.store.stored().map((s) => [s.messageId, s]));
    for (const m of messages) {
      assert.deepEqual(stored.get(m.messageId)?.body, encoder.encode(JSON.stringify(m.bundle)), m.messageId);
      assert.equal(stored.get(m.messageId)?.contentType, FHIR_JSON);
    }
  } finally {
    sink.signal("SIGTERM");
    await sink.exited();
    await sink.close();
  }
});
