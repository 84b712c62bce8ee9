/**
 * Delivery rules end to end (the status table in src/delivery/outcome.ts; issue 3 items a, b, c, i, j, k):
 * what eventsink does with each kind of EventStore answer, and that offsets follow deliveries. Real broker,
 * real HTTP, eventsink as its own process with its real permission set, the stand-in EventStore with
 * injected faults.
 */
import assert from "node:assert/strict";
import {
  committedOffsets,
  committedOffsetsByKafkaTool,
  endOffsets,
  groupMembers,
  groupStateByKafkaTool,
  produce,
  type ProduceRecord,
} from "./support/broker.ts";
import { type EventsinkProcess, type LogLine, spawnEventsink } from "./support/eventsink_process.ts";
import type { EventStore } from "./support/eventstore.ts";
import { conflictingVariant, type FhirBundle, invalidVariants } from "./support/fhir_variants.ts";
import {
  type Message,
  message,
  openPipeline,
  type Pipeline,
  validMessages,
  waitUntil,
} from "./support/pipeline.ts";

const FHIR_JSON = "application/fhir+json; fhirVersion=4.0";
const WAIT_MS = 30_000;

// ---- helpers ----

/** Runs `body` with an eventsink process; on failure prints its log's tail, always kills it at the end. */
async function withEventsink(
  p: Pipeline,
  args: string[],
  body: (sink: EventsinkProcess) => Promise<void>,
): Promise<void> {
  const sink = await spawnEventsink({ ...p, args });
  try {
    await body(sink);
  } catch (error) {
    // The record-level story (retries left out: they are many), then the very end of the output.
    const story = sink.lines.filter((l) => l.msg !== "Delivery failed, will retry").map((l) =>
      JSON.stringify(l)
    );
    const tail = sink.output().split("\n").slice(-15);
    console.error(
      `--- eventsink's log, retries left out ---\n${story.join("\n")}\n--- its last lines ---\n${
        tail.join("\n")
      }`,
    );
    throw error;
  } finally {
    await sink.close();
  }
}

/** SIGTERM, exit 0, and the summary line with the expected counts. */
async function stopCleanly(sink: EventsinkProcess, counts: { delivered: number; skipped: number }) {
  sink.signal("SIGTERM");
  assert.equal(await sink.exited(), 0, "eventsink exits 0 on SIGTERM");
  const stopped = sink.lines.find((l) => l.msg === "Stopped");
  assert.ok(stopped, "a Stopped line");
  assert.deepEqual({ delivered: stopped.delivered, skipped: stopped.skipped }, counts, "Stopped counts");
}

/** Partition and offset from an `x-request-id` of `eventsink-<topic>-<partition>-<offset>`. */
function position(requestId: string | undefined): { partition: number; offset: number } {
  const match = /-(\d+)-(\d+)$/.exec(requestId ?? "");
  assert.ok(match, `not an eventsink request id: ${requestId}`);
  return { partition: Number(match[1]), offset: Number(match[2]) };
}

/** The offsets of `partition` that the stand-in was asked to take, one entry per request, in order. */
function requestedOffsets(store: EventStore, partition: number): number[] {
  return store.requests()
    .map((r) => position(r.headers["x-request-id"]))
    .filter((at) => at.partition === partition)
    .map((at) => at.offset);
}

/** Committed offsets of every partition, -1 where none. */
async function committed(p: Pipeline, partitions: number): Promise<number[]> {
  const offsets = await committedOffsets(p.bootstrap, p.group, p.topic);
  return Array.from({ length: partitions }, (_, partition) => offsets.get(partition) ?? -1);
}

/** Waits until the committed offsets equal `expected` (index = partition), saying what they were if not. */
async function waitForCommitted(p: Pipeline, expected: number[], timeoutMs = WAIT_MS): Promise<void> {
  let last: number[] = [];
  try {
    await waitUntil(`committed offsets ${JSON.stringify(expected)}`, async () => {
      last = await committed(p, expected.length);
      return last.every((offset, partition) => offset === expected[partition]);
    }, timeoutMs);
  } catch (error) {
    throw new Error(`${(error as Error).message}; last seen ${JSON.stringify(last)}`);
  }
}

/** Kafka's own kafka-consumer-groups reports these offsets, each with lag 0. */
async function assertKafkaToolAgrees(p: Pipeline, expected: number[]): Promise<void> {
  const rows = await committedOffsetsByKafkaTool(p.bootstrap, p.group);
  assert.deepEqual(
    rows.map((r) => [r.partition, r.currentOffset, r.lag]),
    expected.map((offset, partition) => [partition, offset, 0]),
    "Kafka's kafka-consumer-groups --describe agrees",
  );
}

function records(messages: Message[], partitionOf: (index: number) => number): ProduceRecord[] {
  return messages.map((m, i) => ({
    key: m.messageId,
    value: m.bytes,
    headers: { "content-type": FHIR_JSON },
    partition: partitionOf(i),
  }));
}

function linesNamed(sink: EventsinkProcess, msg: string): LogLine[] {
  return sink.lines.filter((l) => l.msg === msg);
}

/**
 * Reads the log in order and checks, for every "Committed" line, that each earlier offset of its partition
 * (fresh topics start at 0) already had a "Delivered" or "Skipped" line, and that commits never go back.
 */
function assertCommitsFollowAccounting(lines: LogLine[]): void {
  const accounted = new Map<number, Set<number>>();
  const lastCommit = new Map<number, number>();
  for (const line of lines) {
    if (line.msg === "Delivered" || line.msg.startsWith("Skipped a rejected message")) {
      const set = accounted.get(line.partition as number) ?? new Set();
      set.add(line.offset as number);
      accounted.set(line.partition as number, set);
    } else if (line.msg === "Committed") {
      const partition = line.partition as number;
      const offset = line.offset as number;
      for (let o = 0; o < offset; o++) {
        assert.ok(
          accounted.get(partition)?.has(o),
          `committed ${partition}@${offset} before offset ${o} was delivered or skipped`,
        );
      }
      assert.ok(offset >= (lastCommit.get(partition) ?? 0), `commit of partition ${partition} went back`);
      lastCommit.set(partition, offset);
    }
  }
}

/** Lines that say the consumer crashed, the loop failed, or the group was left. */
function troubleLines(sink: EventsinkProcess): LogLine[] {
  return sink.lines.filter((l) =>
    l.level === "raw" && l.msg.trim() !== "" ||
    /Kafka consumer failed|Internal error|Cannot commit offset|Leaving the group failed/.test(l.msg)
  );
}

/**
 * Text of a message that must never reach a log: every string in it of 8 characters or more, except the
 * message id (an identifier that an OperationOutcome may quote).
 */
function distinctiveStrings(bundle: unknown, messageId?: string): string[] {
  const found: string[] = [];
  const walk = (value: unknown) => {
    if (typeof value === "string") {
      if (value.length >= 8 && (messageId === undefined || !value.includes(messageId))) found.push(value);
    } else if (Array.isArray(value)) value.forEach(walk);
    else if (typeof value === "object" && value !== null) Object.values(value).forEach(walk);
  };
  walk(bundle);
  return [...new Set(found)];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- (a) ----

Deno.test("delivery: any 2xx means delivered; every record committed only after its 2xx; Kafka's tool agrees", async () => {
  await using p = await openPipeline(3);
  const messages = await validMessages(12);
  await produce(p.bootstrap, p.topic, records(messages, (i) => i % 3));
  // The first two answers are other 2xx statuses than the stand-in's own 202 (and store nothing).
  p.store.faults.script([200, 201]);
  await withEventsink(p, [], async (sink) => {
    await waitUntil("12 Delivered lines", () => linesNamed(sink, "Delivered").length >= 12, WAIT_MS);
    await waitForCommitted(p, [4, 4, 4]);

    const delivered = linesNamed(sink, "Delivered");
    assert.equal(delivered.length, 12, "one Delivered line per record");
    for (const [i, m] of messages.entries()) {
      const line = delivered.find((l) => l.partition === i % 3 && l.offset === Math.floor(i / 3));
      assert.ok(line, `record ${i % 3}@${Math.floor(i / 3)} delivered`);
      assert.equal(line.topic, p.topic);
      assert.equal(line.key, m.messageId);
      assert.equal(line.attempts, 1);
    }
    assert.deepEqual(
      delivered.map((l) => l.status as number).sort(),
      [200, 201, ...Array(10).fill(202)],
      "200 and 201 count as delivered, like 202",
    );
    // Exactly one POST per record: a 2xx is never sent again.
    const ids = p.store.requests().map((r) => r.headers["x-request-id"]).sort();
    assert.deepEqual(
      ids,
      messages.map((_, i) => `eventsink-${p.topic}-${i % 3}-${Math.floor(i / 3)}`).sort(),
    );
    const stored = new Map(p.store.stored().map((s) => [s.messageId, s]));
    assert.equal(stored.size, 10);
    for (const m of messages) {
      const arrived = stored.get(m.messageId);
      if (arrived) assert.deepEqual(arrived.body, m.bytes, "stored byte for byte");
    }

    assertCommitsFollowAccounting(sink.lines);
    assert.deepEqual(await endOffsets(p.bootstrap, p.topic), new Map([[0, 4], [1, 4], [2, 4]]));
    await assertKafkaToolAgrees(p, [4, 4, 4]);
    assert.deepEqual(troubleLines(sink), []);
    await stopCleanly(sink, { delivered: 12, skipped: 0 });
  });
});

// ---- (b) ----

/**
 * valid, 422, valid, 409, 400, valid: the rejected records with what their log line must say. Every value
 * is FHIR JSON (eventsink rejects anything else itself, without a POST: see hostile_test.ts), so the 400 is
 * the stand-in's injected answer for one message.
 */
async function rejectionScenario() {
  const [a, b, c, d] = await validMessages(4) as [Message, Message, Message, Message];
  const invalid = invalidVariants(a.bundle).find((v) => v.name === "missing-timestamp")!;
  const conflict: FhirBundle = conflictingVariant(a.bundle); // a's id, other content: 409 once a is stored
  const rejected = [
    {
      offset: 1,
      status: 422,
      diagnostics: "Bundle.timestamp is required",
      value: message(invalid.bundle).bytes,
      secrets: distinctiveStrings(invalid.bundle, message(invalid.bundle).messageId),
    },
    {
      offset: 3,
      status: 409,
      // The id is the record's own, so the log's version leaves it out (the line's messageId names it).
      diagnostics: "A Message with ID=… already exists.",
      value: message(conflict).bytes,
      secrets: distinctiveStrings(conflict, a.messageId),
    },
    {
      offset: 4,
      status: 400,
      diagnostics: "fault injected by the EventStore stand-in: answered 400",
      value: d.bytes,
      secrets: distinctiveStrings(d.bundle, d.messageId),
    },
  ].map((r) => ({ ...r, key: crypto.randomUUID() }));
  const valid = [{ offset: 0, m: a }, { offset: 2, m: b }, { offset: 5, m: c }].map((v) => ({
    ...v,
    key: crypto.randomUUID(),
  }));
  const all = [...valid.map((v) => ({ offset: v.offset, key: v.key, value: v.m.bytes })), ...rejected]
    .sort((x, y) => x.offset - y.offset);
  const toProduce: ProduceRecord[] = all.map((r) => ({
    key: r.key,
    value: r.value,
    headers: { "content-type": "application/fhir+json" },
    partition: 0,
  }));
  return { valid, rejected, toProduce, answeredWith400: d.messageId };
}

Deno.test("delivery: 422, 409 and 400 are skipped by default with a log line that names the record, never its body", async () => {
  await using p = await openPipeline(1);
  const { valid, rejected, toProduce, answeredWith400 } = await rejectionScenario();
  p.store.faults.failMessage(answeredWith400, 400);
  const positions = await produce(p.bootstrap, p.topic, toProduce);
  assert.deepEqual(positions.map((at) => at.offset), [0, 1, 2, 3, 4, 5]);
  await withEventsink(p, [], async (sink) => {
    await p.store.waitForStored(3, { timeoutMs: WAIT_MS });
    await waitForCommitted(p, [6]);

    assert.deepEqual(
      p.store.stored().map((s) => s.messageId),
      valid.map((v) => v.m.messageId),
      "the valid records, each one after a rejected one included, are stored in order",
    );
    // Each record was posted once: a rejection is final, not retried.
    assert.deepEqual(requestedOffsets(p.store, 0), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(p.store.requests().map((r) => r.status), [202, 422, 202, 409, 400, 202]);

    const skipped = sink.lines.filter((l) => l.msg === "Skipped a rejected message (--on-rejected=skip)");
    assert.equal(skipped.length, 3, "one Skipped line per rejected record");
    for (const r of rejected) {
      const line = skipped.find((l) => l.offset === r.offset);
      assert.ok(line, `a Skipped line for offset ${r.offset}`);
      assert.equal(line.level, "warn");
      assert.equal(line.topic, p.topic);
      assert.equal(line.partition, 0);
      assert.equal(line.key, r.key);
      assert.equal(line.status, r.status);
      assert.ok(
        String(line.reason).includes(r.diagnostics),
        `offset ${r.offset}: reason ${JSON.stringify(line.reason)} lacks the diagnostics "${r.diagnostics}"`,
      );
      const text = JSON.stringify(line);
      assert.ok(r.secrets.length >= 5, "the check below has something to look for");
      for (const secret of r.secrets) {
        assert.ok(!text.includes(secret), `offset ${r.offset}: the log line quotes the body: "${secret}"`);
      }
    }
    // Not in that line, nor anywhere else in eventsink's output.
    const output = sink.output();
    for (const r of rejected) {
      for (const secret of r.secrets) {
        assert.ok(
          !output.includes(secret),
          `offset ${r.offset}: eventsink's output quotes the body: "${secret}"`,
        );
      }
    }
    for (const v of valid) {
      const line = sink.lines.find((l) => l.msg === "Delivered" && l.offset === v.offset);
      assert.ok(line, `offset ${v.offset} delivered`);
      assert.equal(line.key, v.key);
    }
    assertCommitsFollowAccounting(sink.lines);
    await assertKafkaToolAgrees(p, [6]);
    assert.deepEqual(troubleLines(sink), []);
    await stopCleanly(sink, { delivered: 3, skipped: 3 });
  });
});

Deno.test("delivery: --on-rejected=stop exits 1 at the rejected record, which stays uncommitted and is posted again on restart", async () => {
  await using p = await openPipeline(1);
  const messages = await validMessages(4);
  const invalid = invalidVariants(messages[0]!.bundle).find((v) => v.name === "mismatched-fullurl")!;
  // valid, valid, 422, valid, valid
  const values = [
    messages[0]!.bytes,
    messages[1]!.bytes,
    message(invalid.bundle).bytes,
    messages[2]!.bytes,
    messages[3]!.bytes,
  ];
  const keys = values.map(() => crypto.randomUUID());
  await produce(
    p.bootstrap,
    p.topic,
    values.map((value, i) => ({
      key: keys[i]!,
      value,
      headers: { "content-type": FHIR_JSON },
      partition: 0,
    })),
  );

  await withEventsink(p, ["--on-rejected", "stop"], async (sink) => {
    assert.equal(await sink.exited(WAIT_MS), 1, "exit code 1");
    const stop = sink.lines.find((l) => l.msg.startsWith(`Stopping at ${p.topic}/0@2`));
    assert.ok(stop, "an error line naming the record it stopped at");
    assert.equal(stop.level, "error");
    assert.equal(stop.offset, 2);
    assert.equal(stop.key, keys[2]);
    assert.equal(stop.status, 422);
    assert.match(
      String(stop.reason),
      /EventStore answered 422: entry\.fullUrl does not match MessageHeader\.id\./,
    );
    assert.equal(linesNamed(sink, "Skipped a rejected message (--on-rejected=skip)").length, 0);
    assert.deepEqual(
      requestedOffsets(p.store, 0),
      [0, 1, 2],
      "records after the rejected one are not posted",
    );
    assert.deepEqual(p.store.stored().map((s) => s.messageId), [
      messages[0]!.messageId,
      messages[1]!.messageId,
    ]);
    assert.deepEqual(await committed(p, 1), [2], "committed up to the rejected record, not past it");
    assertCommitsFollowAccounting(sink.lines);
    const stopped = sink.lines.find((l) => l.msg === "Stopped");
    assert.deepEqual([stopped?.delivered, stopped?.skipped], [2, 0]);
  });
  const rows = await committedOffsetsByKafkaTool(p.bootstrap, p.group);
  assert.deepEqual(
    rows.map((r) => [r.partition, r.currentOffset, r.lag]),
    [[0, 2, 3]],
    "Kafka's kafka-consumer-groups: committed 2, three records (the rejected one and two after it) to go",
  );

  // A restart with --on-rejected=skip resumes AT the rejected record: it is posted again, then skipped.
  const before = p.store.requests().length;
  await withEventsink(p, ["--on-rejected", "skip"], async (sink) => {
    await p.store.waitForStored(4, { timeoutMs: WAIT_MS });
    await waitForCommitted(p, [5]);
    assert.deepEqual(
      p.store.requests().slice(before).map((r) => position(r.headers["x-request-id"]).offset),
      [2, 3, 4],
    );
    await stopCleanly(sink, { delivered: 2, skipped: 1 });
  });
});

// ---- (c) ----

Deno.test("delivery: a 60 s EventStore outage (503s, then dropped connections) holds offsets, keeps the group, loses nothing", async () => {
  await using p = await openPipeline(3);
  const messages = await validMessages(30);
  const partitionOf = (i: number) => i % 3;
  const offsetOf = (i: number) => Math.floor(i / 3);
  await produce(p.bootstrap, p.topic, records(messages.slice(0, 15), partitionOf));
  await withEventsink(p, [], async (sink) => {
    // Healthy first: 5 records per partition delivered and committed.
    await p.store.waitForStored(15, { timeoutMs: WAIT_MS });
    await waitForCommitted(p, [5, 5, 5]);
    const groupBefore = await groupMembers(p.bootstrap, p.group);
    assert.equal(groupBefore.state, "Stable");
    assert.equal(groupBefore.members.length, 1);
    assert.deepEqual(groupBefore.members[0]!.assignment, { [p.topic]: [0, 1, 2] });
    const toolBefore = await groupStateByKafkaTool(p.bootstrap, p.group);
    assert.deepEqual([toolBefore.state, toolBefore.members], ["Stable", 1]);

    // Outage: the next 15 records (offsets 5-9 of each partition) cannot be delivered.
    p.store.faults.outage({ status: 503 });
    const requestsBefore = p.store.requests().length;
    await produce(p.bootstrap, p.topic, records(messages.slice(15), (i) => partitionOf(i + 15)));
    const storedIds = () => new Set(p.store.stored().map((s) => s.messageId));
    const firstUndelivered = (partition: number) => {
      const ids = storedIds();
      const offsets = messages.flatMap((m, i) =>
        partitionOf(i) === partition && !ids.has(m.messageId) ? [offsetOf(i)] : []
      );
      return Math.min(...offsets);
    };
    let checks = 0;
    const holdFor = async (ms: number, phase: string) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const offsets = await committed(p, 3);
        for (const [partition, offset] of offsets.entries()) {
          assert.ok(
            offset <= firstUndelivered(partition),
            `${phase}: partition ${partition} committed ${offset}, past its first undelivered record`,
          );
        }
        assert.deepEqual(offsets, [5, 5, 5], `${phase}: committed offsets moved`);
        assert.equal(p.store.stored().length, 15, `${phase}: nothing stored`);
        checks++;
        await sleep(2_000);
      }
    };
    await holdFor(30_000, "503 outage");
    const during503 = p.store.requests().slice(requestsBefore);
    // Connections closed mid-request: fetch rejects (TypeError) instead of answering.
    p.store.faults.apply({ outage: null, dropConnections: "all" });
    await holdFor(30_000, "dropped connections");
    const duringDrops = p.store.requests().slice(requestsBefore + during503.length);
    assert.ok(checks >= 20, `committed offsets checked ${checks} times during the outage`);
    // eventsink kept trying every partition through both phases.
    for (const [phase, requests, status] of [["503", during503, 503], ["drop", duringDrops, null]] as const) {
      assert.ok(requests.every((r) => r.status === status), `${phase} phase: every answer ${status}`);
      for (const partition of [0, 1, 2]) {
        const tried = requests.filter((r) => position(r.headers["x-request-id"]).partition === partition);
        assert.ok(
          tried.length >= 10,
          `${phase} phase: partition ${partition} retried only ${tried.length} times`,
        );
        assert.ok(
          tried.every((r) => position(r.headers["x-request-id"]).offset === 5),
          "only the first undelivered record",
        );
      }
    }

    p.store.faults.reset();
    await p.store.waitForStored(30, { timeoutMs: WAIT_MS });
    await waitForCommitted(p, [10, 10, 10]);
    assert.deepEqual(
      [...storedIds()].sort(),
      messages.map((m) => m.messageId).sort(),
      "every message stored",
    );
    assert.equal(p.store.stored().length, 30, "none stored twice");
    for (const partition of [0, 1, 2]) {
      const expected = messages.filter((_, i) => partitionOf(i) === partition).map((m) => m.messageId);
      const ids = new Set(expected);
      assert.deepEqual(
        p.store.stored().map((s) => s.messageId).filter((id) => ids.has(id)),
        expected,
        `partition ${partition} stored in offset order`,
      );
    }

    // The consumer never left its group: one assignment, same member, group stable throughout.
    assert.equal(linesNamed(sink, "Partitions assigned").length, 1, "exactly one Partitions assigned line");
    const groupAfter = await groupMembers(p.bootstrap, p.group);
    assert.equal(groupAfter.state, "Stable");
    assert.deepEqual(
      groupAfter.members.map((m) => m.memberId),
      [groupBefore.members[0]!.memberId],
      "same member",
    );
    assert.deepEqual(groupAfter.members[0]!.assignment, { [p.topic]: [0, 1, 2] });
    const toolAfter = await groupStateByKafkaTool(p.bootstrap, p.group);
    assert.deepEqual([toolAfter.state, toolAfter.members], ["Stable", 1]);
    const kafkaWarnings = sink.lines.filter((l) => l.level === "warn" && l.msg.startsWith("Kafka:"));
    assert.deepEqual(kafkaWarnings, [], "KafkaJS reported no trouble (rebalance, heartbeat)");

    assertCommitsFollowAccounting(sink.lines);
    await assertKafkaToolAgrees(p, [10, 10, 10]);
    assert.deepEqual(troubleLines(sink), []);
    await stopCleanly(sink, { delivered: 30, skipped: 0 });
  });
});

// ---- (i) ----

Deno.test("delivery: order within a partition holds while failures and Retry-After are interleaved", async () => {
  await using p = await openPipeline(1);
  const messages = await validMessages(40);
  await produce(p.bootstrap, p.topic, records(messages, () => 0));
  // Record k's attempts: the failures of pattern k % 5, then a pass. The first record gets a 429 with
  // Retry-After: 1 before its own pattern.
  const patterns: (number | "drop")[][] = [[503], [], [503, 503], [500], ["drop", "drop", 502]];
  const script = [429, ...messages.flatMap((_, k) => [...patterns[k % 5]!, "pass" as const])];
  const failures = script.filter((step) => step !== "pass").length;
  p.store.faults.apply({ script, retryAfter: 1 });
  await withEventsink(p, [], async (sink) => {
    await p.store.waitForRequests(1, { timeoutMs: WAIT_MS });
    p.store.faults.retryAfter(null); // only the first answer carries Retry-After
    await p.store.waitForStored(40, { timeoutMs: 60_000 });
    await waitForCommitted(p, [40]);

    assert.deepEqual(
      p.store.stored().map((s) => s.messageId),
      messages.map((m) => m.messageId),
      "stored in produce order",
    );
    const requests = p.store.requests();
    const offsets = requestedOffsets(p.store, 0);
    for (let i = 1; i < offsets.length; i++) {
      assert.ok(
        offsets[i]! >= offsets[i - 1]!,
        `request ${i} went back from ${offsets[i - 1]} to ${offsets[i]}`,
      );
    }
    assert.equal(p.store.faults.state().script.length, 0, "every scripted failure was met");
    assert.equal(requests.length, script.length, `one request per scripted step (${failures} failures)`);
    assert.equal(requests[0]!.status, 429);
    const gap = requests[1]!.receivedAt.getTime() - requests[0]!.receivedAt.getTime();
    assert.ok(gap >= 900, `Retry-After: 1 honoured: the retry came ${gap} ms later`);
    assert.equal(position(requests[1]!.headers["x-request-id"]).offset, 0, "the retry is of the same record");
    const delivered = linesNamed(sink, "Delivered");
    assert.deepEqual(delivered.map((l) => l.offset), messages.map((_, k) => k), "Delivered lines in order");
    assert.ok(delivered.filter((l) => (l.attempts as number) > 1).length >= 30, "most needed retries");
    assertCommitsFollowAccounting(sink.lines);
    assert.deepEqual(troubleLines(sink), []);
    await stopCleanly(sink, { delivered: 40, skipped: 0 });
  });
});

// ---- (j) ----

Deno.test("delivery: a message answered 500 for good stalls its own partition only; healed, the partition completes", async () => {
  await using p = await openPipeline(3);
  const messages = await validMessages(100);
  // 30 per partition first (messages 0-29 → partition 0, 30-59 → 1, 60-89 → 2), 5 more to 1 and 2 later.
  const first = messages.slice(0, 90);
  const later = messages.slice(90);
  const bad = messages[3]!; // partition 0, offset 3
  const partition0 = first.slice(0, 30).map((m) => m.messageId);
  const storedOfPartition0 = () =>
    p.store.stored().map((s) => s.messageId).filter((id) => partition0.includes(id));
  p.store.faults.failMessage(bad.messageId, 500);
  await produce(p.bootstrap, p.topic, records(first, (i) => Math.floor(i / 30)));
  await withEventsink(p, [], async (sink) => {
    await waitUntil("partitions 1 and 2 committed to 30", async () => {
      const offsets = await committed(p, 3);
      return offsets[1] === 30 && offsets[2] === 30;
    }, WAIT_MS);
    // The other partitions keep consuming what arrives while partition 0 is stuck.
    await produce(p.bootstrap, p.topic, records(later, (i) => 1 + (i % 2)));
    await waitUntil("partitions 1 and 2 committed to 35", async () => {
      const offsets = await committed(p, 3);
      return offsets[1] === 35 && offsets[2] === 35;
    }, WAIT_MS);
    const storedIds = new Set(p.store.stored().map((s) => s.messageId));
    for (const [i, m] of [...first.slice(30), ...later].entries()) {
      assert.ok(storedIds.has(m.messageId), `message ${30 + i} of partitions 1-2 stored`);
    }
    assert.deepEqual(
      storedOfPartition0(),
      partition0.slice(0, 3),
      "partition 0: only the records before the bad one",
    );
    const tried = p.store.requests().filter((r) => position(r.headers["x-request-id"]).partition === 0);
    const triedOffsets = [...new Set(tried.map((r) => position(r.headers["x-request-id"]).offset))];
    assert.deepEqual(triedOffsets, [0, 1, 2, 3], "no partition-0 record after the bad one was posted");
    const badTries = tried.filter((r) => r.messageId === bad.messageId);
    assert.ok(badTries.length >= 3, `the bad record retried (${badTries.length} tries)`);
    assert.ok(badTries.every((r) => r.status === 500));
    const skipped = linesNamed(sink, "Skipped a rejected message (--on-rejected=skip)");
    assert.equal(skipped.length, 0, "a 500 is never skipped");
    // Partition 0 is held exactly at the bad record: 0-2 were delivered seconds ago, so their progress is
    // committed (the sink commits delivered progress at least every second), and nothing past the bad one.
    await waitForCommitted(p, [3, 35, 35], 10_000);

    p.store.faults.failMessage(bad.messageId, null);
    await p.store.waitForStored(100, { timeoutMs: WAIT_MS });
    await waitForCommitted(p, [30, 35, 35]);
    assert.deepEqual(storedOfPartition0(), partition0, "partition 0 stored in offset order");
    const badDelivered = sink.lines.find((l) => l.msg === "Delivered" && l.partition === 0 && l.offset === 3);
    assert.ok(badDelivered, "the healed record is delivered");
    assert.ok((badDelivered.attempts as number) > badTries.length, `attempts ${badDelivered.attempts}`);
    assertCommitsFollowAccounting(sink.lines);
    await assertKafkaToolAgrees(p, [30, 35, 35]);
    assert.equal(linesNamed(sink, "Partitions assigned").length, 1);
    assert.deepEqual(troubleLines(sink), []);
    await stopCleanly(sink, { delivered: 100, skipped: 0 });
  });
});

// ---- (k) ----

Deno.test("delivery: connections closed mid-request (fetch rejects) never stop consumption", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(30);
  p.store.faults.dropConnections("all");
  await produce(p.bootstrap, p.topic, records(messages.slice(0, 20), (i) => i % 2));
  await withEventsink(p, [], async (sink) => {
    await p.store.waitForRequests(1, { timeoutMs: WAIT_MS });
    const started = Date.now();
    await waitUntil("a few seconds of dropped connections", () => {
      return Date.now() - started >= 5_000 && p.store.stats().dropped >= 10;
    }, WAIT_MS);
    assert.equal(p.store.stored().length, 0);
    assert.deepEqual(await committed(p, 2), [-1, -1], "nothing committed");
    const failed = linesNamed(sink, "Delivery failed, will retry");
    assert.ok(failed.length > 0, "retries are logged");
    assert.ok(
      failed.every((l) => /^Cannot reach the EventStore/.test(String(l.reason))),
      `the failures are network errors: ${JSON.stringify(failed.map((l) => l.reason))}`,
    );

    p.store.faults.reset();
    await p.store.waitForStored(20, { timeoutMs: WAIT_MS });
    await waitForCommitted(p, [10, 10]);
    // Still consuming: records produced now arrive too.
    await produce(p.bootstrap, p.topic, records(messages.slice(20), (i) => i % 2));
    await p.store.waitForStored(30, { timeoutMs: WAIT_MS });
    await waitForCommitted(p, [15, 15]);
    assert.deepEqual(
      p.store.stored().map((s) => s.messageId).sort(),
      messages.map((m) => m.messageId).sort(),
    );
    assert.equal(linesNamed(sink, "Partitions assigned").length, 1);
    assertCommitsFollowAccounting(sink.lines);
    assert.deepEqual(troubleLines(sink), []);
    await stopCleanly(sink, { delivered: 30, skipped: 0 });
  });
});
