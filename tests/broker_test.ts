// Tests of the real-Kafka harness itself, against the broker that tests/run.ts shares.
import assert from "node:assert/strict";
import type { Consumer } from "kafkajs";
import {
  type Bytes,
  committedOffsets,
  committedOffsetsByKafkaTool,
  createTopic,
  deleteRecords,
  endOffsets,
  groupMembers,
  groupStateByKafkaTool,
  kafkaClient,
  produce,
  type ProduceRecord,
  startOffsets,
  startTestBroker,
  stopTestBroker,
  testBroker,
  uniqueName,
} from "./support/broker.ts";

interface Consumed {
  partition: number;
  offset: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, Uint8Array | Uint8Array[]>;
}

const CONSUME_TIMEOUT_MS = 30_000;
const encoder = new TextEncoder();

/** Consumes `count` records of `topic` from the beginning in `group`, then runs `fn` while still a member. */
async function withConsumer(
  bootstrap: string,
  topic: string,
  group: string,
  count: number,
  fn: (consumer: Consumer, records: Consumed[]) => Promise<void> = async () => {},
): Promise<Consumed[]> {
  const consumer = kafkaClient(bootstrap).consumer({ groupId: group, maxWaitTimeInMs: 250 });
  const records: Consumed[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const all = new Promise<void>((resolve) => {
      consumer.run({
        autoCommit: false,
        eachMessage: ({ partition, message }) => {
          records.push({
            partition,
            offset: Number(message.offset),
            key: bytes(message.key),
            value: bytes(message.value),
            headers: normalizeHeaders(message.headers),
          });
          if (records.length >= count) resolve();
          return Promise.resolve();
        },
      });
    });
    await withTimeout(all, CONSUME_TIMEOUT_MS, `consuming ${count} records of ${topic}`);
    await fn(consumer, records);
    return records;
  } finally {
    await consumer.disconnect();
  }
}

async function withTimeout(promise: Promise<void>, ms: number, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms ${what}`)), ms);
  });
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function bytes(data: Bytes | null | undefined): Uint8Array | null {
  if (data === null || data === undefined) return null;
  return typeof data === "string" ? encoder.encode(data) : new Uint8Array(data);
}

function normalizeHeaders(
  headers: Record<string, Bytes | Bytes[] | undefined> | undefined,
): Record<string, Uint8Array | Uint8Array[]> {
  const normalized: Record<string, Uint8Array | Uint8Array[]> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    normalized[name] = Array.isArray(value) ? value.map((v) => bytes(v)!) : bytes(value)!;
  }
  return normalized;
}

Deno.test("produce then consume keeps value bytes, key and headers", async () => {
  const { bootstrap } = testBroker();
  const topic = uniqueName("harness-roundtrip");
  await createTopic(bootstrap, topic, 3);
  const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const records: ProduceRecord[] = [
    {
      value: allBytes,
      key: "patient-1",
      headers: { "content-type": "application/fhir+json", trace: allBytes },
    },
    { value: "second", key: new Uint8Array([0xff, 0x00]), headers: { repeated: ["a", new Uint8Array([1])] } },
    { value: null, key: "patient-1" },
    { value: "pinned", partition: 2 },
  ];

  const positions = await produce(bootstrap, topic, records);

  // Same key, same partition, next offset.
  assert.equal(positions[2]!.partition, positions[0]!.partition);
  assert.equal(positions[2]!.offset, positions[0]!.offset + 1);
  assert.equal(positions[3]!.partition, 2);
  const consumed = await withConsumer(bootstrap, topic, uniqueName("harness-group"), records.length);
  records.forEach((record, i) => {
    const position = positions[i]!;
    const got = consumed.find((c) => c.partition === position.partition && c.offset === position.offset);
    assert.ok(got, `record ${i} not found at ${position.partition}/${position.offset}`);
    assert.deepEqual(got.value, bytes(record.value));
    assert.deepEqual(got.key, bytes(record.key));
    assert.deepEqual(got.headers, normalizeHeaders(record.headers));
  });
});

Deno.test("committed offsets agree between KafkaJS and Kafka's ConsumerGroupCommand", async () => {
  const { bootstrap } = testBroker();
  const topic = uniqueName("harness-commit");
  const group = uniqueName("harness-group");
  await createTopic(bootstrap, topic, 3);
  await produce(bootstrap, topic, [0, 0, 0, 2, 2].map((partition) => ({ value: "x", partition })));

  await withConsumer(bootstrap, topic, group, 5, async (consumer) => {
    await consumer.commitOffsets([{ topic, partition: 0, offset: "2" }, {
      topic,
      partition: 2,
      offset: "2",
    }]);
  });

  assert.deepEqual(await committedOffsets(bootstrap, group, topic), new Map([[0, 2], [1, -1], [2, 2]]));
  const byTool = (await committedOffsetsByKafkaTool(bootstrap, group)).filter((row) =>
    row.currentOffset >= 0
  );
  assert.deepEqual(
    byTool.map(({ topic, partition, currentOffset, logEndOffset, lag }) => ({
      topic,
      partition,
      currentOffset,
      logEndOffset,
      lag,
    })),
    [
      { topic, partition: 0, currentOffset: 2, logEndOffset: 3, lag: 1 },
      { topic, partition: 2, currentOffset: 2, logEndOffset: 2, lag: 0 },
    ],
  );
});

Deno.test("groupMembers shows a running consumer's assignment and the group empty after it leaves", async () => {
  const { bootstrap } = testBroker();
  const topic = uniqueName("harness-members");
  const group = uniqueName("harness-group");
  await createTopic(bootstrap, topic, 2);
  await produce(bootstrap, topic, [{ value: "a", partition: 0 }, { value: "b", partition: 1 }]);

  await withConsumer(bootstrap, topic, group, 2, async () => {
    const running = await groupMembers(bootstrap, group);
    assert.equal(running.state, "Stable");
    assert.equal(running.members.length, 1);
    assert.deepEqual(running.members[0]!.assignment, { [topic]: [0, 1] });
    const byTool = await groupStateByKafkaTool(bootstrap, group);
    assert.equal(byTool.state, "Stable");
    assert.equal(byTool.members, 1);
  });

  const left = await groupMembers(bootstrap, group);
  assert.equal(left.state, "Empty");
  assert.deepEqual(left.members, []);
});

Deno.test("deleteRecords moves the low watermark", async () => {
  const { bootstrap } = testBroker();
  const topic = uniqueName("harness-delete");
  await createTopic(bootstrap, topic, 1);
  await produce(bootstrap, topic, ["r0", "r1", "r2", "r3", "r4"].map((value) => ({ value })));

  await deleteRecords(bootstrap, topic, 0, 3);

  assert.equal((await startOffsets(bootstrap, topic)).get(0), 3);
  assert.equal((await endOffsets(bootstrap, topic)).get(0), 5);
  const consumed = await withConsumer(bootstrap, topic, uniqueName("harness-group"), 2);
  assert.deepEqual(consumed.map((record) => record.offset), [3, 4]);
});

Deno.test("the shared broker stopped and started again keeps its topics and data", async () => {
  const { bootstrap } = testBroker();
  const topic = uniqueName("harness-outage");
  await createTopic(bootstrap, topic, 1);
  const [before] = await produce(bootstrap, topic, [{ value: "before the outage" }]);

  await stopTestBroker();
  try {
    const [host, port] = bootstrap.split(":");
    await assert.rejects(
      Deno.connect({ hostname: host!, port: Number(port) }),
      Deno.errors.ConnectionRefused,
    );
  } finally {
    await startTestBroker();
  }

  assert.equal((await endOffsets(bootstrap, topic)).get(0), 1);
  const [after] = await produce(bootstrap, topic, [{ value: "after the outage" }]);
  assert.equal(after!.offset, before!.offset + 1);
  const consumed = await withConsumer(bootstrap, topic, uniqueName("harness-group"), 2);
  assert.deepEqual(consumed.map((record) => new TextDecoder().decode(record.value!)), [
    "before the outage",
    "after the outage",
  ]);
});
