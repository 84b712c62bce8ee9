/**
 * Resilience of the forward loop end to end (issue 3, items d, e, f, g, h, l): eventsink killed, stopped,
 * doubled, cut off from its broker, replaying, and finding unread records deleted. Real broker, real
 * HTTP, eventsink as its own process.
 */
import assert from "node:assert/strict";
import {
  committedOffsets,
  committedOffsetsByKafkaTool,
  deleteRecords,
  endOffsets,
  groupMembers,
  kafkaClient,
  produce,
  startOffsets,
  startTestBroker,
  stopTestBroker,
} from "./support/broker.ts";
import {
  endpointUrl,
  type EventsinkProcess,
  type LogLine,
  runCheck,
  spawnEventsink,
} from "./support/eventsink_process.ts";
import { get, sample } from "./support/scrape.ts";
import type { EventStore } from "./support/eventstore.ts";
import { type Message, openPipeline, type Pipeline, validMessages, waitUntil } from "./support/pipeline.ts";

// ---- helpers ----

interface Position {
  partition: number;
  offset: number;
}

/** The `x-request-id` eventsink sends for a record. */
function requestIdOf(topic: string, partition: number, offset: number): string {
  return `eventsink-${topic}-${partition}-${offset}`;
}

function positionOfRequestId(id: string): Position {
  const match = /-(\d+)-(\d+)$/.exec(id);
  assert.ok(match, `not an eventsink request id: ${id}`);
  return { partition: Number(match[1]), offset: Number(match[2]) };
}

/** Request ids the stand-in answered with a 2xx (recorded before the answer is sent). */
function acceptedRequestIds(store: EventStore): Set<string> {
  return new Set(
    store.requests()
      .filter((r) => r.status !== null && r.status >= 200 && r.status < 300)
      .map((r) => r.headers["x-request-id"] ?? ""),
  );
}

/** How many requests the stand-in saw for each request id. */
function requestCounts(store: EventStore): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of store.requests()) {
    const id = r.headers["x-request-id"] ?? "";
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** Records this process logged "Delivered" for. */
function deliveredBy(sink: EventsinkProcess): Position[] {
  return sink.lines
    .filter((l) => l.msg === "Delivered")
    .map((l) => ({ partition: Number(l.partition), offset: Number(l.offset) }));
}

/** The partitions named by each "Partitions assigned" line of this process, in order. */
function assignments(sink: EventsinkProcess): number[][] {
  return sink.lines
    .filter((l) => l.msg === "Partitions assigned")
    .map((l) => (l.partitions === "(none)" ? [] : String(l.partitions).split(",").map(Number)));
}

function lastAssignment(sink: EventsinkProcess): number[] | undefined {
  return assignments(sink).at(-1);
}

/** Produces the messages with their message id as key, partition chosen per message; returns positions. */
async function produceTo(
  p: Pipeline,
  messages: Message[],
  partitionOf: (index: number) => number,
): Promise<Map<string, Position>> {
  const positions: Position[] = [];
  // In sends of 100: a partition's batch of one send must stay under the broker's 1 MB message limit.
  for (let start = 0; start < messages.length; start += 100) {
    const chunk = messages.slice(start, start + 100);
    positions.push(
      ...(await produce(
        p.bootstrap,
        p.topic,
        chunk.map((m, i) => ({ key: m.messageId, value: m.bytes, partition: partitionOf(start + i) })),
      )),
    );
  }
  return new Map(messages.map((m, i) => [m.messageId, positions[i]!]));
}

/** Waits until the group's committed offset equals the log-end offset on every partition. */
async function waitCommittedToEnd(
  p: Pipeline,
  group = p.group,
  timeoutMs = 30_000,
): Promise<Map<number, number>> {
  const ends = await endOffsets(p.bootstrap, p.topic);
  let committed = new Map<number, number>();
  await waitUntil(
    `group ${group} committed to the end of every partition (${JSON.stringify([...ends])})`,
    async () => {
      committed = await committedOffsets(p.bootstrap, group, p.topic);
      return [...ends].every(([partition, end]) => committed.get(partition) === end);
    },
    timeoutMs,
  );
  return committed;
}

function storedIds(store: EventStore): Set<string> {
  return new Set(store.stored().map((s) => s.messageId));
}

/**
 * Checks the rule "committed offsets are never ahead of deliveries" on one process's own log: when it logs
 * "Committed" {partition, offset}, every record of that partition from `base` (where the process started)
 * up to the offset must have been logged "Delivered" before. Returns the violations found.
 */
function commitsAheadOfDeliveries(sink: EventsinkProcess, base: Map<number, number>): string[] {
  const delivered = new Map<number, Set<number>>();
  const violations: string[] = [];
  for (const line of sink.lines) {
    const partition = Number(line.partition);
    if (line.msg === "Delivered") {
      if (!delivered.has(partition)) delivered.set(partition, new Set());
      delivered.get(partition)!.add(Number(line.offset));
    } else if (line.msg === "Committed") {
      const from = Math.max(0, base.get(partition) ?? 0);
      for (let offset = from; offset < Number(line.offset); offset++) {
        if (!delivered.get(partition)?.has(offset)) {
          violations.push(
            `Committed ${partition}@${line.offset} before ${partition}@${offset} was delivered`,
          );
          break;
        }
      }
    }
  }
  return violations;
}

/**
 * A transparent HTTP relay in front of the stand-in that notes when each request *arrives* (the stand-in
 * records a request only once it has answered it): lets a test act while a delivery is in flight.
 */
function arrivalTap(target: string) {
  const arrivals: { requestId: string; at: number }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    arrivals.push({ requestId: req.headers.get("x-request-id") ?? "", at: Date.now() });
    const url = new URL(req.url);
    const headers = new Headers();
    for (const name of ["content-type", "accept", "user-agent", "x-request-id", "authorization"]) {
      const value = req.headers.get(name);
      if (value !== null) headers.set(name, value);
    }
    try {
      const body = await req.arrayBuffer();
      const upstream = await fetch(`${target}${url.pathname}${url.search}`, {
        method: req.method,
        headers,
        body,
        signal: req.signal,
      });
      const answer = await upstream.arrayBuffer();
      const answerHeaders = new Headers();
      for (const name of ["content-type", "retry-after"]) {
        const value = upstream.headers.get(name);
        if (value !== null) answerHeaders.set(name, value);
      }
      return new Response(answer, { status: upstream.status, headers: answerHeaders });
    } catch {
      // eventsink went away (or the stand-in closed) while the request was held.
      return new Response(null, { status: 502 });
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    arrivals,
    arrived: (requestId: string) => arrivals.find((a) => a.requestId === requestId),
    close: () => server.shutdown(),
  };
}

/** Fails naming how many problems were found and the first few. */
function assertNone(problems: string[], what: string): void {
  assert.ok(problems.length === 0, `${what}: ${problems.length}, first: ${problems.slice(0, 8).join("; ")}`);
}

/** For `finally` blocks: SIGTERM if still running (no throw if it is gone). */
function terminate(sink: EventsinkProcess | undefined): void {
  try {
    sink?.signal("SIGTERM");
  } catch {
    // already exited
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- (d) kill -9 mid-run ----

Deno.test("resilience (d): kill -9 mid-run and a restart lose nothing, and commits never run ahead of deliveries", async () => {
  await using p = await openPipeline(4);
  const PARTITIONS = 4;
  const messages = await validMessages(1_000);
  p.store.faults.latency(5);
  const positions = await produceTo(p, messages, (i) => i % PARTITIONS);
  const ends = await endOffsets(p.bootstrap, p.topic);
  assert.deepEqual([...ends.values()], [250, 250, 250, 250]);

  // The sampler: reads the group's committed offsets over and over and checks, right when they come back,
  // that every record below them had been accepted by the stand-in.
  const violations: string[] = [];
  let samples = 0;
  let midRunSamples = 0;
  let retriableErrors = 0;
  let firstRunning = true;
  let sampling = true;
  let samplerError: unknown;
  // One admin connection for all samples, so that they come every few milliseconds.
  const admin = kafkaClient(p.bootstrap).admin();
  await admin.connect();
  const sampler = (async () => {
    while (sampling) {
      let committed: Map<number, number>;
      try {
        const [fetched] = await admin.fetchOffsets({ groupId: p.group, topics: [p.topic] });
        committed = new Map((fetched?.partitions ?? []).map((x) => [x.partition, Number(x.offset)]));
      } catch (error) {
        // E.g. GROUP_LOAD_IN_PROGRESS while the group is created: skip this sample, not the check.
        if ((error as { retriable?: boolean }).retriable !== true) throw error;
        retriableErrors++;
        await sleep(50);
        continue;
      }
      const accepted = acceptedRequestIds(p.store); // synchronously after the answer: what was stored by then
      samples++;
      if (
        firstRunning &&
        [...committed].some(([partition, offset]) => offset > 0 && offset < ends.get(partition)!)
      ) {
        midRunSamples++;
      }
      for (const [partition, offset] of committed) {
        for (let o = 0; o < offset; o++) {
          if (!accepted.has(requestIdOf(p.topic, partition, o))) {
            violations.push(
              `sample ${samples}: committed ${partition}@${offset} but ${partition}@${o} not accepted`,
            );
            break;
          }
        }
      }
      await sleep(10);
    }
  })().catch((error) => (samplerError = error)).finally(() => admin.disconnect());

  // Paced so that the kill comes after a few ticker commits (one a second): unpaced, 600 records can be
  // stored before the first tick, and then no commit is ever seen mid-run.
  const first = await spawnEventsink({ ...p, args: ["--max-rate", "250"] });
  let storedAtKill = 0;
  try {
    await p.store.waitForStored(600, { timeoutMs: 60_000 });
    first.signal("SIGKILL");
    storedAtKill = p.store.stored().length;
    firstRunning = false;
    assert.notEqual(await first.exited(), 0, "a SIGKILLed process does not exit 0");
  } finally {
    await first.close();
  }
  assert.ok(storedAtKill >= 300 && storedAtKill < 1_000, `the kill landed mid-run (${storedAtKill} stored)`);
  assert.ok(!first.lines.some((l) => l.msg === "Stopped"), "the first process was killed, not stopped");
  assertNone(
    commitsAheadOfDeliveries(first, new Map()),
    "first run: Committed lines ahead of its Delivered lines",
  );
  assertNone(violations, "first run: sampled committed offsets ahead of the records the stand-in accepted");
  const afterKill = await committedOffsets(p.bootstrap, p.group, p.topic);
  assert.ok(
    [...afterKill].some(([partition, offset]) => offset < ends.get(partition)!),
    `some records were left uncommitted by the kill: ${JSON.stringify([...afterKill])}`,
  );

  const requestsBeforeRestart = p.store.requests().length;
  const second = await spawnEventsink(p);
  try {
    // The killed member stays in the group until its session (30 s) expires: the rejoin waits for that.
    await p.store.waitForStored(1_000, { timeoutMs: 90_000 });
    await waitCommittedToEnd(p, p.group, 30_000);
    sampling = false;
    await sampler;
    assert.equal(samplerError, undefined, `the offset sampler failed: ${samplerError}`);

    const stored = storedIds(p.store);
    const missing = messages.filter((m) => !stored.has(m.messageId));
    assert.deepEqual(missing.map((m) => positions.get(m.messageId)), [], "every record is at the stand-in");
    assert.equal(p.store.stored().length, 1_000, "each message stored once");
    assertNone(violations, "sampled committed offsets ahead of the records the stand-in accepted");
    assert.ok(
      samples >= 20 && midRunSamples >= 5,
      `offsets were sampled while the first run was mid-way (${samples} samples, ${midRunSamples} mid-run, ${retriableErrors} skipped)`,
    );
    assertNone(
      commitsAheadOfDeliveries(second, afterKill),
      "second run: Committed lines ahead of its Delivered lines",
    );
    // The second run starts where the first one's commits stood: nothing below them is posted again.
    for (const request of p.store.requests().slice(requestsBeforeRestart)) {
      const { partition, offset } = positionOfRequestId(request.headers["x-request-id"] ?? "");
      assert.ok(offset >= afterKill.get(partition)!, `re-posted ${partition}@${offset} below the commit`);
    }
    const tool = await committedOffsetsByKafkaTool(p.bootstrap, p.group);
    assert.deepEqual(
      tool.map((r) => [r.partition, r.currentOffset]),
      [0, 1, 2, 3].map((partition) => [partition, 250]),
      "Kafka's own kafka-consumer-groups agrees",
    );
  } finally {
    sampling = false;
    await sampler;
    terminate(second);
    assert.equal(await second.exited(), 0);
    await second.close();
  }
});

// ---- (e) SIGTERM during a slow delivery ----

/**
 * With the first record delivered and committed, produces the rest (from offset 1) behind answers that take
 * `latencyMs`; resolves with offset 1's request id once its POST is in flight.
 */
async function holdSecondRecord(
  p: Pipeline,
  tap: ReturnType<typeof arrivalTap>,
  messages: Message[],
  latencyMs: number,
): Promise<string> {
  await p.store.waitForStored(1, { timeoutMs: 30_000 });
  await waitCommittedToEnd(p);
  p.store.faults.latency(latencyMs);
  await produceTo(p, messages.slice(1), () => 0);
  const inFlight = requestIdOf(p.topic, 0, 1);
  await waitUntil("the POST of offset 1 reached the stand-in", () => tap.arrived(inFlight) !== undefined);
  return inFlight;
}

Deno.test("resilience (e): SIGTERM during a slow delivery finishes it, commits it, posts nothing after it, exits 0", async () => {
  await using p = await openPipeline(1);
  const tap = arrivalTap(p.store.url);
  const messages = await validMessages(6);
  await produceTo(p, messages.slice(0, 1), () => 0);
  const sink = await spawnEventsink({ ...p, store: { url: tap.url } });
  try {
    const inFlight = await holdSecondRecord(p, tap, messages, 3_000);
    const signalledAt = Date.now();
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(30_000), 0, "exit code after SIGTERM");
    const exitedAt = Date.now();

    assert.ok(sink.lines.some((l) => l.msg.startsWith("SIGTERM received")), "SIGTERM was logged");
    // The stand-in held the POST 3 s; eventsink waited for the answer rather than dropping it.
    assert.ok(
      exitedAt >= tap.arrived(inFlight)!.at + 2_500,
      `exited ${exitedAt - signalledAt} ms after SIGTERM: before the in-flight answer came`,
    );
    const answered = p.store.requests().filter((r) => r.headers["x-request-id"] === inFlight);
    assert.deepEqual(answered.map((r) => r.status), [202], "the in-flight record was delivered");
    assert.ok(storedIds(p.store).has(messages[1]!.messageId));
    assert.ok(
      sink.lines.some((l) => l.msg === "Delivered" && l.offset === 1),
      "eventsink logged the in-flight record as delivered",
    );
    assert.deepEqual(
      tap.arrivals.map((a) => a.requestId).filter((id) =>
        id !== requestIdOf(p.topic, 0, 0) && id !== inFlight
      ),
      [],
      "records after the in-flight one are not posted",
    );
    assert.equal(p.store.stored().length, 2);
    assert.deepEqual(
      await committedOffsets(p.bootstrap, p.group, p.topic),
      new Map([[0, 2]]),
      "in-flight + 1",
    );
    assert.deepEqual(
      (await committedOffsetsByKafkaTool(p.bootstrap, p.group)).map((r) => [r.partition, r.currentOffset]),
      [[0, 2]],
    );
    const stopped = sink.lines.find((l) => l.msg === "Stopped");
    assert.equal(stopped?.delivered, 2, "Stopped summary");
  } finally {
    await sink.close();
    await tap.close();
  }
});

Deno.test("resilience (e): a second signal during the grace period abandons the deliveries in flight, exits 1 at once, commits nothing undelivered", async (t) => {
  const pairs: [Deno.Signal, Deno.Signal][] = [["SIGTERM", "SIGTERM"], ["SIGTERM", "SIGINT"]];
  for (const [firstSignal, secondSignal] of pairs) {
    await t.step(`${firstSignal}, then ${secondSignal}`, async () => {
      await using p = await openPipeline(1);
      const tap = arrivalTap(p.store.url);
      const messages = await validMessages(4);
      await produceTo(p, messages.slice(0, 1), () => 0);
      const sink = await spawnEventsink({ ...p, store: { url: tap.url } });
      try {
        const inFlight = await holdSecondRecord(p, tap, messages, 20_000);
        sink.signal(firstSignal);
        await sink.waitForLog((l) => l.msg.startsWith(`${firstSignal} received`), 5_000);
        const secondAt = Date.now();
        sink.signal(secondSignal);
        assert.equal(await sink.exited(10_000), 1, "exit code after the second signal");
        const took = Date.now() - secondAt;
        assert.ok(took < 3_000, `exited ${took} ms after the second signal: not at once`);

        assert.ok(
          sink.lines.some((l) => l.msg.startsWith(`Second ${secondSignal}`)),
          "the second signal was logged",
        );
        const stopped = sink.lines.find((l) => l.msg === "Stopped");
        assert.equal(stopped?.unfinished, 1, "the Stopped line counts the abandoned record as unfinished");
        assert.ok(
          !p.store.requests().some((r) => r.headers["x-request-id"] === inFlight),
          "the stand-in had not answered the in-flight record yet",
        );
        assert.ok(!sink.lines.some((l) => l.msg === "Delivered" && l.offset === 1));
        assert.deepEqual(
          tap.arrivals.map((a) => positionOfRequestId(a.requestId).offset),
          [0, 1],
          "nothing after the in-flight record was posted",
        );
        assert.deepEqual(
          await committedOffsets(p.bootstrap, p.group, p.topic),
          new Map([[0, 1]]),
          "only the delivered record is committed",
        );
      } finally {
        await sink.close();
        p.store.faults.reset();
        await p.store.close(); // ends the held POST before the relay shuts down
        await tap.close();
      }
    });
  }
});

// ---- (f) two processes in one group ----

Deno.test("resilience (f): two processes split the partitions, and a stopped one hands its partitions over", async () => {
  await using p = await openPipeline(4);
  const ALL = [0, 1, 2, 3];
  const messages = await validMessages(80);
  const a = await spawnEventsink(p);
  let b: EventsinkProcess | undefined;
  try {
    await a.waitForLog((l) => l.msg === "Partitions assigned" && l.partitions === "0,1,2,3");
    b = await spawnEventsink(p);
    const split = () => {
      const sa = lastAssignment(a) ?? [];
      const sb = lastAssignment(b!) ?? [];
      return { sa, sb };
    };
    await waitUntil("each process's last assignment is a disjoint, non-empty half of the partitions", () => {
      const { sa, sb } = split();
      return sa.length > 0 && sb.length > 0 && !sa.some((x) => sb.includes(x)) &&
        [...sa, ...sb].sort().join(",") === ALL.join(",");
    }, 45_000);
    const { sa, sb } = split();
    // The coordinator agrees.
    await waitUntil("the group is stable with two members", async () => {
      const group = await groupMembers(p.bootstrap, p.group);
      return group.state === "Stable" && group.members.length === 2;
    });
    const described = (await groupMembers(p.bootstrap, p.group)).members
      .map((m) => (m.assignment[p.topic] ?? []).join(","))
      .sort();
    assert.deepEqual(described, [sa.join(","), sb.join(",")].sort(), "the coordinator's assignment");

    // Phase 1: 10 records per partition flow through both processes.
    await produceTo(p, messages.slice(0, 40), (i) => i % 4);
    await p.store.waitForStored(40, { timeoutMs: 30_000 });
    await waitCommittedToEnd(p);
    for (const [name, sink, owned] of [["A", a, sa], ["B", b, sb]] as const) {
      const partitions = new Set(deliveredBy(sink).map((d) => d.partition));
      assert.deepEqual(
        [...partitions].sort(),
        [...owned].sort(),
        `process ${name} delivered its own partitions`,
      );
    }
    assert.equal(deliveredBy(a).length + deliveredBy(b).length, 40, "each record delivered once");

    // B stops: A takes its partitions over and delivers what comes afterwards on them.
    const assignedLinesOfA = assignments(a).length;
    b.signal("SIGTERM");
    assert.equal(await b.exited(30_000), 0, "B exits 0");
    const deliveredByB = deliveredBy(b).length;
    await waitUntil(
      "A owns every partition again",
      () => assignments(a).length > assignedLinesOfA && lastAssignment(a)?.join(",") === ALL.join(","),
      45_000,
    );
    await produceTo(p, messages.slice(40), (i) => i % 4); // offsets 10..19 of each partition
    await p.store.waitForStored(80, { timeoutMs: 30_000 });
    await waitCommittedToEnd(p);
    const byA = new Set(deliveredBy(a).map((d) => `${d.partition}@${d.offset}`));
    for (const partition of sb) {
      for (let offset = 10; offset < 20; offset++) {
        assert.ok(
          byA.has(`${partition}@${offset}`),
          `A delivered B's former partition ${partition}@${offset}`,
        );
      }
    }
    assert.equal(deliveredBy(b).length, deliveredByB, "B delivered nothing after it stopped");

    const stored = storedIds(p.store);
    assert.ok(messages.every((m) => stored.has(m.messageId)), "every record is stored");
    assert.deepEqual(
      (await committedOffsetsByKafkaTool(p.bootstrap, p.group)).map((r) => [r.partition, r.currentOffset]),
      ALL.map((partition) => [partition, 20]),
      "every record committed",
    );
  } finally {
    terminate(b);
    terminate(a);
    assert.equal(await a.exited(30_000), 0, "A exits 0");
    await a.close();
    await b?.close();
  }
});

// ---- (g) broker outage ----

Deno.test("resilience (g): after a 30 s broker outage eventsink recovers by itself and never exits", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(20);
  await produceTo(p, messages.slice(0, 10), (i) => i % 2);
  const sink = await spawnEventsink(p);
  try {
    await p.store.waitForStored(10, { timeoutMs: 30_000 });
    await waitCommittedToEnd(p);

    const linesBefore = sink.lines.length;
    await stopTestBroker();
    try {
      // Waits the 30 s of the outage and fails if eventsink exits meanwhile.
      await assert.rejects(sink.exited(30_000), /still running/, "eventsink exited during the broker outage");
    } finally {
      await startTestBroker();
    }
    const during = sink.lines.slice(linesBefore);
    assert.ok(
      during.some((l) => l.level === "warn" && l.msg.startsWith("Kafka: ")),
      "eventsink noticed the outage (a Kafka warning)",
    );
    assert.ok(
      !during.some((l) => l.level === "error"),
      `no error lines: ${JSON.stringify(during.filter((l) => l.level === "error"))}`,
    );

    await produceTo(p, messages.slice(10), (i) => i % 2);
    await p.store.waitForStored(20, { timeoutMs: 120_000 });
    await waitCommittedToEnd(p, p.group, 60_000);
    const stored = storedIds(p.store);
    assert.ok(messages.every((m) => stored.has(m.messageId)), "every record is stored");
    await assert.rejects(sink.exited(100), /still running/, "eventsink still runs");
    assert.deepEqual(
      (await committedOffsetsByKafkaTool(p.bootstrap, p.group)).map((r) => [r.partition, r.currentOffset]),
      [[0, 10], [1, 10]],
    );
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(30_000), 0);
  } finally {
    await startTestBroker(); // a no-op when it runs
    await sink.close();
  }
});

// ---- (h) --from-beginning ----

Deno.test("resilience (h): --from-beginning re-posts every record in a replay group, leaving the service group as it was", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(20);
  await produceTo(p, messages, (i) => i % 2);
  const ids = [0, 1].flatMap((partition) =>
    Array.from({ length: 10 }, (_, offset) => requestIdOf(p.topic, partition, offset))
  );

  const service = await spawnEventsink(p);
  try {
    await p.store.waitForStored(20, { timeoutMs: 30_000 });
    await waitCommittedToEnd(p);
    service.signal("SIGTERM");
    assert.equal(await service.exited(30_000), 0);
  } finally {
    await service.close();
  }
  const before = await committedOffsets(p.bootstrap, p.group, p.topic);
  assert.deepEqual(before, new Map([[0, 10], [1, 10]]), "the service group is fully committed");
  assert.equal(p.store.requests().length, 20);

  // --keep-group: a replay's group is removed at its end otherwise; here its offsets are checked after.
  const replay = await spawnEventsink({ ...p, args: ["--from-beginning", "--keep-group"] });
  try {
    const starting = await replay.waitForLog((l) => / starting$/.test(l.msg));
    const replayGroup = String(starting.group);
    assert.match(replayGroup, new RegExp(`^${p.group}\\.replay\\.\\d{8}T\\d{6}Z$`), "replay group name");

    await waitUntil("every record posted twice", () => {
      const counts = requestCounts(p.store);
      return ids.every((id) => counts.get(id) === 2);
    });
    // While the replay runs, the service group has no member and its offsets are as they were.
    assert.deepEqual(
      (await groupMembers(p.bootstrap, p.group)).members,
      [],
      "nobody joined the service group",
    );
    assert.deepEqual(await committedOffsets(p.bootstrap, p.group, p.topic), before);
    await waitCommittedToEnd(p, replayGroup);

    const counts = requestCounts(p.store);
    assert.deepEqual(ids.filter((id) => counts.get(id) !== 2), [], "every record posted exactly twice");
    assert.equal(counts.size, 20, "no other requests");
    assert.ok(p.store.requests().every((r) => r.status === 202), "all answered 202 (repeats are accepted)");
    assert.equal(p.store.stored().length, 20, "repeats are not stored twice");
    replay.signal("SIGTERM");
    assert.equal(await replay.exited(30_000), 0);

    assert.deepEqual(
      await committedOffsets(p.bootstrap, p.group, p.topic),
      before,
      "service group unchanged",
    );
    assert.deepEqual(
      (await committedOffsetsByKafkaTool(p.bootstrap, p.group)).map((r) => [r.partition, r.currentOffset]),
      [[0, 10], [1, 10]],
    );
    assert.deepEqual(
      (await committedOffsetsByKafkaTool(p.bootstrap, replayGroup)).map((
        r,
      ) => [r.topic, r.partition, r.currentOffset]),
      [[p.topic, 0, 10], [p.topic, 1, 10]],
      "the replay group exists with its own offsets",
    );
  } finally {
    await replay.close();
  }
});

// ---- (l) unread records deleted (retention) ----

/** The "were deleted (retention)" warning lines of a process. */
/** The warning names partition 0's lost offsets, 10 to 14, and where the partition resumed, 15. */
function assertLostTenToFourteen(warning: LogLine): void {
  const { partition, lostFrom, lostTo, resumeAt } = warning;
  assert.deepEqual(
    { partition, lostFrom, lostTo, resumeAt },
    { partition: 0, lostFrom: 10, lostTo: 14, resumeAt: 15 },
    `the warning names the lost offsets: ${JSON.stringify(warning)}`,
  );
}

function deletionWarnings(sink: EventsinkProcess): LogLine[] {
  return sink.lines.filter((l) => l.msg.includes("were deleted (retention)"));
}

Deno.test("resilience (l): after records past the committed offset were deleted, a restart resumes at the earliest left and names the loss", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(40);
  const first20 = await produceTo(p, messages.slice(0, 20), (i) => i % 2); // offsets 0..9 of each
  const sink = await spawnEventsink(p);
  try {
    await p.store.waitForStored(20, { timeoutMs: 30_000 });
    await waitCommittedToEnd(p);
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(30_000), 0);
  } finally {
    await sink.close();
  }
  assert.equal(first20.size, 20);
  const later = await produceTo(p, messages.slice(20), (i) => i % 2); // offsets 10..19 of each
  await deleteRecords(p.bootstrap, p.topic, 0, 15); // partition 0: 10..14 never delivered, now gone
  assert.equal((await startOffsets(p.bootstrap, p.topic)).get(0), 15);
  const check = await runCheck(p);
  assert.equal(check.code, 0, check.output);
  assert.match(
    check.output,
    /consumer group +\S+: Empty, 0 members; lag 15 \(0: 5, 1: 10\); records deleted \(retention\) before this group read them, lost to it: 0: 10–14\n/,
    "check names the loss before the start, and counts only the records left as lag",
  );
  const requestsBefore = p.store.requests().length; // check's search is not a delivery

  const restarted = await spawnEventsink(p);
  try {
    // Expected: partition 0 resumes at 15, partition 1 at 10.
    const expected = messages.slice(20).filter((m) => {
      const at = later.get(m.messageId)!;
      return at.partition === 1 || at.offset >= 15;
    });
    const lost = messages.slice(20).filter((m) => !expected.includes(m));
    assert.equal(expected.length, 15);
    await p.store.waitForStored(35, { timeoutMs: 30_000 });
    await waitCommittedToEnd(p);
    const warning = await restarted.waitForLog((l) => l.msg.includes("were deleted (retention)"), 5_000);

    const stored = storedIds(p.store);
    assert.ok(expected.every((m) => stored.has(m.messageId)), "the records left are delivered");
    assert.deepEqual(lost.filter((m) => stored.has(m.messageId)), [], "the deleted ones are not");
    const posted = p.store.requests().slice(requestsBefore).map((r) => r.headers["x-request-id"] ?? "");
    assert.deepEqual(
      posted.map(positionOfRequestId).filter((at) => at.partition === 0).map((at) => at.offset).sort((x, y) =>
        x - y
      ),
      [15, 16, 17, 18, 19],
      "partition 0 resumed at the earliest record left",
    );
    assertLostTenToFourteen(warning);
    assert.equal(warning.level, "warn");
    assert.deepEqual(deletionWarnings(restarted).map((l) => l.partition), [0], "no warning for partition 1");
    restarted.signal("SIGTERM");
    assert.equal(await restarted.exited(30_000), 0);
  } finally {
    await restarted.close();
  }
});

Deno.test("resilience (l): records deleted past a running eventsink held up by an outage are reported lost, the rest delivered", async () => {
  await using p = await openPipeline(1);
  const messages = await validMessages(30);
  p.store.faults.outage({ status: 503 });
  await produceTo(p, messages.slice(0, 10), () => 0); // offsets 0..9, one batch eventsink fetches whole
  const sink = await spawnEventsink(p);
  try {
    const first = requestIdOf(p.topic, 0, 0);
    await waitUntil(
      "eventsink is retrying offset 0",
      () => p.store.requests().some((r) => r.headers["x-request-id"] === first && r.status === 503),
    );
    // While it is held at offset 0, it fetches one batch ahead (10..19) and then pauses the partition;
    // 20..29 are written after that and 0..24 deleted: 20..24 were never fetched.
    await produceTo(p, messages.slice(10, 20), () => 0);
    await sink.waitForLog((l) => l.msg === "Kafka: Pausing fetching from 1 topics", 30_000);
    await produceTo(p, messages.slice(20), () => 0);
    await deleteRecords(p.bootstrap, p.topic, 0, 25);
    assert.equal((await startOffsets(p.bootstrap, p.topic)).get(0), 25);
    assert.deepEqual(
      await committedOffsets(p.bootstrap, p.group, p.topic),
      new Map([[0, -1]]),
      "nothing committed yet",
    );
    p.store.faults.reset();

    await p.store.waitForStored(25, { timeoutMs: 30_000 });
    await waitCommittedToEnd(p);
    const warning = await sink.waitForLog((l) => l.msg.includes("were deleted (retention)"), 5_000);
    const stored = storedIds(p.store);
    const expected = [...messages.slice(0, 20), ...messages.slice(25)];
    assert.ok(
      expected.every((m) => stored.has(m.messageId)),
      "records fetched before the deletion, and 25..29",
    );
    assert.deepEqual(messages.slice(20, 25).filter((m) => stored.has(m.messageId)), [], "20..24 are gone");
    const posted = new Set(
      p.store.requests().map((r) => positionOfRequestId(r.headers["x-request-id"] ?? "").offset),
    );
    assert.deepEqual([20, 21, 22, 23, 24].filter((o) => posted.has(o)), [], "20..24 never posted");
    const { partition, lostFrom, lostTo, resumeAt } = warning;
    assert.deepEqual(
      { partition, lostFrom, lostTo, resumeAt },
      { partition: 0, lostFrom: 20, lostTo: 24, resumeAt: 25 },
      `the warning names the lost offsets: ${JSON.stringify(warning)}`,
    );
    assert.equal(deletionWarnings(sink).length, 1, "one warning");
    const metrics = (await get(await endpointUrl(sink), "/metrics")).body;
    assert.equal(
      sample(metrics, `eventsink_records_deleted_total{topic="${p.topic}"}`),
      5,
      "counted for alerts",
    );
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(30_000), 0);
    const stopped = await sink.waitForLog((l) => l.msg === "Stopped", 1_000);
    assert.equal(stopped.deleted, 5, "the Stopped line counts them");
  } finally {
    await sink.close();
  }
});
