/**
 * Replays and other runs by hand, end to end: real broker, the EventStore stand-in, eventsink as its own
 * process. Bounded runs, start positions, the service group left alone, dry runs and the rate limit.
 */
import assert from "node:assert/strict";
import {
  committedOffsets,
  committedOffsetsByKafkaTool,
  createTopic,
  deleteRecords,
  groupMembers,
  produce,
  type ProduceRecord,
  uniqueName,
} from "./support/broker.ts";
import { type EventsinkProcess, type LogLine, spawnEventsink } from "./support/eventsink_process.ts";
import type { EventStore } from "./support/eventstore.ts";
import { invalidVariants, loadFixtures, messageIdOf, withNewIds } from "./support/fhir_variants.ts";
import { openPipeline, type Pipeline, requestIds, validMessages, waitUntil } from "./support/pipeline.ts";

const encoder = new TextEncoder();

/** Writes records in sends of `chunk`, each well under the broker's 1 MiB batch limit per partition. */
async function produceInChunks(p: Pipeline, records: ProduceRecord[], chunk = 1_000): Promise<void> {
  for (let i = 0; i < records.length; i += chunk) {
    await produce(p.bootstrap, p.topic, records.slice(i, i + chunk));
  }
}

/** The log line that ends a run by hand. */
async function summaryOf(run: EventsinkProcess): Promise<LogLine> {
  return await run.waitForLog((l) => l.msg === "Summary", 5_000);
}

/** The replay's own group, as its start-up line names it. */
async function replayGroupOf(run: EventsinkProcess): Promise<string> {
  return String((await run.waitForLog((l) => / starting$/.test(l.msg))).group);
}

/** Whether the group is gone (deleted, or never existed): the coordinator describes it as Dead. */
async function groupIsGone(p: Pipeline, group: string): Promise<boolean> {
  return (await groupMembers(p.bootstrap, group)).state === "Dead";
}

function positionsOf(store: EventStore): string[] {
  return requestIds(store).map((id) => /-(\d+-\d+)$/.exec(id)![1]!).sort();
}

Deno.test("replay: 50,000 records with --from-beginning --until-end end by themselves, exit 0, every one stored", async () => {
  await using p = await openPipeline(4);
  const fixtures = await loadFixtures();
  const bundles = Array.from({ length: 50_000 }, (_, i) => withNewIds(fixtures[i % fixtures.length]!.bundle));
  const values = bundles.map((bundle) => encoder.encode(JSON.stringify(bundle)));
  await produceInChunks(p, values.map((value, i) => ({ value, partition: i % 4 })));

  const run = await spawnEventsink({
    ...p,
    args: ["--from-beginning", "--until-end", "--log-level", "info", "--progress-interval", "2s"],
  });
  try {
    assert.equal(await run.exited(240_000), 0, run.output().slice(-3000));
    const summary = await summaryOf(run);
    assert.deepEqual(
      [
        summary.done,
        summary.total,
        summary.delivered,
        summary.deadLettered,
        summary.skipped,
        summary.unfinished,
      ],
      [50_000, 50_000, 50_000, 0, 0, 0],
    );
    assert.equal(summary.end, "0=12500,1=12500,2=12500,3=12500");
    assert.equal(summary.reached, summary.end);
    assert.equal(summary.groupAtEnd, "removed");

    const stored = p.store.stored();
    assert.equal(stored.length, 50_000);
    const byId = new Map(stored.map((s) => [s.messageId, s.body]));
    const mismatched = bundles.filter((bundle, i) => {
      const body = byId.get(messageIdOf(bundle));
      return body === undefined || body.length !== values[i]!.length ||
        !body.every((b, j) => b === values[i]![j]);
    });
    assert.equal(mismatched.length, 0, "every message stored byte for byte");
    assert.equal(p.store.requests().length, 50_000, "each record posted once");
    assert.ok(await groupIsGone(p, String(summary.group)), "the replay group is removed");
    assert.ok(run.lines.some((l) => l.msg === "Progress" && typeof l.done === "number"), "progress lines");
    assert.match(run.output(), /Replay of \S+ finished in .*\n\s+records\s+50,000\s+of 50,000, at /);
  } finally {
    await run.close();
  }
});

Deno.test("replay: rejected and invalid records end it with exit 3 and exact counts; the running service is not disturbed", async () => {
  await using p = await openPipeline(3);
  const deadLetterTopic = uniqueName("dlq");
  await createTopic(p.bootstrap, deadLetterTopic, 1);
  const valid = await validMessages(12);
  const invalid = invalidVariants((await loadFixtures())[0]!.bundle).slice(0, 4);
  const records: ProduceRecord[] = [
    ...valid.map((m, i) => ({ value: m.bytes, partition: i % 3 })),
    ...invalid.map((v, i) => ({ value: JSON.stringify(v.bundle), partition: i % 3 })),
    { value: "not json", headers: { "content-type": "application/fhir+json" }, partition: 1 },
    { value: null, partition: 2 },
  ];
  await produce(p.bootstrap, p.topic, records);

  // The service consumes everything (rejections skipped), then stays running beside the replay.
  const service = await spawnEventsink(p);
  let replay: EventsinkProcess | undefined;
  try {
    await waitUntil("the service committed every partition to its end", async () => {
      const committed = await committedOffsets(p.bootstrap, p.group, p.topic);
      return [...committed.values()].reduce((a, b) => a + b, 0) === records.length;
    });
    const before = await committedOffsets(p.bootstrap, p.group, p.topic);
    const membersBefore = (await groupMembers(p.bootstrap, p.group)).members.map((m) => m.memberId);
    const requestsBefore = p.store.requests().length;

    replay = await spawnEventsink({
      ...p,
      args: ["--from-beginning", "--until-end", "--dead-letter-topic", deadLetterTopic],
    });
    assert.equal(await replay.exited(60_000), 3, replay.output().slice(-3000));
    const summary = await summaryOf(replay);
    assert.deepEqual(
      { done: summary.done, delivered: summary.delivered, deadLettered: summary.deadLettered },
      { done: records.length, delivered: 12, deadLettered: 5 },
    );
    assert.equal(summary.skipped, 1, "the tombstone");
    assert.equal(summary.unfinished, 0);
    assert.equal(p.store.requests().length - requestsBefore, 16, "12 valid and 4 invalid posted again");
    assert.match(replay.output(), new RegExp(`dead-lettered\\s+5  to topic ${deadLetterTopic}`));
    assert.match(replay.output(), /exit 3: some records were dead-lettered or skipped/);

    assert.deepEqual(
      await committedOffsets(p.bootstrap, p.group, p.topic),
      before,
      "service offsets as they were",
    );
    assert.deepEqual(
      (await committedOffsetsByKafkaTool(p.bootstrap, p.group)).map((r) => [r.partition, r.currentOffset]),
      [...before].sort(([a], [b]) => a - b),
      "Kafka's own tool agrees",
    );
    const membersAfter = (await groupMembers(p.bootstrap, p.group)).members.map((m) => m.memberId);
    assert.deepEqual(membersAfter, membersBefore, "the service kept its membership");
    assert.equal(service.lines.filter((l) => l.msg === "Partitions assigned").length, 1, "no rebalance");
    assert.ok(await groupIsGone(p, String(summary.group)), "the replay group is removed");
  } finally {
    service.signal("SIGTERM");
    assert.equal(await service.exited(), 0);
    await service.close();
    await replay?.close();
  }
});

Deno.test("replay: --from-timestamp starts at the first record at or after the time; --keep-group keeps its group", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(20);
  const hour = 3_600_000;
  // A day ago, on the hour: records older than the broker's retention (7 days) could be deleted mid-test.
  const day = Math.floor(Date.now() / hour) * hour - 24 * hour;
  // Offsets 0..9 of each partition, written an hour apart from midnight.
  await produce(
    p.bootstrap,
    p.topic,
    messages.map((m, i) => ({ value: m.bytes, partition: i % 2, timestamp: day + Math.floor(i / 2) * hour })),
  );
  const run = await spawnEventsink({
    ...p,
    args: ["--from-timestamp", new Date(day + 5 * hour).toISOString(), "--until-end", "--keep-group"],
  });
  try {
    assert.equal(await run.exited(60_000), 0, run.output().slice(-3000));
    const prepared = await run.waitForLog((l) => l.msg === "Replay group prepared");
    assert.equal(prepared.start, "0=5,1=5");
    assert.deepEqual(positionsOf(p.store), [
      "0-5",
      "0-6",
      "0-7",
      "0-8",
      "0-9",
      "1-5",
      "1-6",
      "1-7",
      "1-8",
      "1-9",
    ]);
    const summary = await summaryOf(run);
    assert.equal(summary.groupAtEnd, "kept");
    assert.deepEqual(
      (await committedOffsetsByKafkaTool(p.bootstrap, String(summary.group))).map((
        r,
      ) => [r.partition, r.currentOffset]),
      [[0, 10], [1, 10]],
      "the kept group holds the replay's progress",
    );
    assert.deepEqual([...(await committedOffsets(p.bootstrap, p.group, p.topic)).values()], [-1, -1]);
  } finally {
    await run.close();
  }
});

Deno.test("replay: --from-offsets replays only the listed partitions; stopped early it says where to go on from, exit 1", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(40);
  await produce(p.bootstrap, p.topic, messages.map((m, i) => ({ value: m.bytes, partition: i % 2 })));
  const first = await spawnEventsink({
    ...p,
    args: ["--from-offsets", "0=5", "--until-end", "--max-rate", "10"],
  });
  let resumeAt: string;
  try {
    await p.store.waitForStored(4, { timeoutMs: 30_000 });
    first.signal("SIGINT");
    assert.equal(await first.exited(), 1, "stopped before the end");
    const summary = await summaryOf(first);
    assert.equal(summary.end, "0=20,1=20");
    assert.equal(summary.start, "0=5,1=20");
    resumeAt = /to go on from here: --from-offsets (\S+)/.exec(first.output())?.[1] ?? "";
    assert.equal(resumeAt, summary.reached);
    assert.match(first.output(), /Replay of \S+ stopped before the end/);
    assert.match(first.output(), /exit 1: stopped before the end/);
    assert.equal(summary.groupAtEnd, "removed", "also after Ctrl-C");
    assert.ok(await groupIsGone(p, String(summary.group)));
  } finally {
    await first.close();
  }
  const second = await spawnEventsink({ ...p, args: ["--from-offsets", resumeAt, "--until-end"] });
  try {
    assert.equal(await second.exited(60_000), 0, second.output().slice(-3000));
  } finally {
    await second.close();
  }
  const outside = await spawnEventsink({ ...p, args: ["--from-offsets", "0=3,1=21", "--until-end"] });
  try {
    assert.equal(await outside.exited(), 1);
    await outside.waitForLog((l) =>
      l.msg ===
        "Cannot start: --from-offsets 1=21 is outside partition 1's records (offsets 0 to 19; its end is 20)"
    );
  } finally {
    await outside.close();
  }
  const posted = new Set(positionsOf(p.store));
  assert.deepEqual(
    [...posted].sort(),
    Array.from({ length: 15 }, (_, i) => `0-${i + 5}`).sort(),
    "offsets 5 to 19 of partition 0, nothing of partition 1",
  );
});

Deno.test("dry run: checks the records after the service group's offsets, posts and commits nothing", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(18);
  await produce(
    p.bootstrap,
    p.topic,
    messages.slice(0, 10).map((m, i) => ({ value: m.bytes, partition: i % 2 })),
  );
  const service = await spawnEventsink(p);
  try {
    await p.store.waitForStored(10, { timeoutMs: 30_000 });
    await waitUntil("the service committed", async () => {
      const committed = await committedOffsets(p.bootstrap, p.group, p.topic);
      return committed.get(0) === 5 && committed.get(1) === 5;
    });
    service.signal("SIGTERM");
    assert.equal(await service.exited(), 0);
  } finally {
    await service.close();
  }
  await produce(p.bootstrap, p.topic, [
    ...messages.slice(10).map((m, i) => ({ value: m.bytes, partition: i % 2 })),
    { value: '{"no": "resourceType"}', partition: 0 },
    { value: null, partition: 1 },
  ]);
  const requestsBefore = p.store.requests().length;
  const before = await committedOffsets(p.bootstrap, p.group, p.topic);

  const dry = await spawnEventsink({ ...p, args: ["--dry-run", "--keep-group"] });
  try {
    assert.equal(await dry.exited(60_000), 3, dry.output().slice(-3000));
    const group = await replayGroupOf(dry);
    assert.match(group, new RegExp(`^${p.group}\\.dry-run\\.\\d{8}T\\d{6}Z$`));
    const summary = await summaryOf(dry);
    assert.deepEqual([summary.start, summary.end, summary.reached], ["0=5,1=5", "0=10,1=10", "0=10,1=10"]);
    assert.deepEqual([summary.delivered, summary.skipped], [8, 2]);
    assert.match(dry.output(), /would send\s+8/);
    assert.match(dry.output(), /largest value\s+[\d,]+ bytes at /);
    assert.ok(dry.lines.some((l) => l.msg === "Skipped a rejected message (dry run: it would not be sent)"));
    assert.equal(dry.lines.filter((l) => l.msg === "Dry run: would send").length, 8);

    assert.equal(p.store.requests().length, requestsBefore, "nothing posted");
    assert.deepEqual(
      await committedOffsets(p.bootstrap, p.group, p.topic),
      before,
      "service group unchanged",
    );
    assert.deepEqual(
      [...(await committedOffsets(p.bootstrap, group, p.topic))],
      [[0, 5], [1, 5]],
      "the dry run's own group holds only its start offsets: nothing was committed",
    );
  } finally {
    await dry.close();
  }
});

Deno.test("replay: --max-rate holds the rate within 10 %; off a terminal, progress comes as plain log lines", async () => {
  await using p = await openPipeline(3);
  const messages = await validMessages(400);
  await produce(p.bootstrap, p.topic, messages.map((m, i) => ({ value: m.bytes, partition: i % 3 })));
  const run = await spawnEventsink({
    ...p,
    args: ["--from-beginning", "--until-end", "--max-rate", "100", "--progress-interval", "1s"],
  });
  try {
    // Records written after the replay noted the end are the service's business, not the replay's.
    await p.store.waitForStored(1, { timeoutMs: 30_000 });
    const later = await validMessages(30);
    await produce(p.bootstrap, p.topic, later.map((m, i) => ({ value: m.bytes, partition: i % 3 })));
    assert.equal(await run.exited(60_000), 0, run.output().slice(-3000));
    assert.equal((await summaryOf(run)).end, "0=134,1=133,2=133");
    const times = p.store.requests().map((r) => r.receivedAt.getTime()).sort((a, b) => a - b);
    assert.equal(times.length, 400);
    const rate = ((times.length - 1) * 1_000) / (times.at(-1)! - times[0]!);
    assert.ok(rate >= 90 && rate <= 110, `rate ${rate.toFixed(1)}/s`);

    const progress = run.lines.filter((l) => l.msg === "Progress");
    assert.ok(progress.length >= 2, `${progress.length} progress lines`);
    const done = progress.map((l) => Number(l.done));
    assert.deepEqual(done, [...done].sort((a, b) => a - b), "done only grows");
    assert.ok(progress.every((l) => l.total === 400 && /%$/.test(String(l.percent))));
    assert.ok(progress.some((l) => typeof l.eta === "string" && typeof l.perSecond === "number"));
    assert.ok(
      !run.output().includes("\r") && !run.output().includes("\x1b["),
      "no terminal codes off a terminal",
    );
  } finally {
    await run.close();
  }
});

Deno.test("run to the end: --until-end alone catches the service group up, commits there, and exits 0", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(20);
  await produce(p.bootstrap, p.topic, messages.map((m, i) => ({ value: m.bytes, partition: i % 2 })));
  // A slow EventStore: the service gets through a few records only before it is stopped.
  p.store.faults.latency(300);
  const service = await spawnEventsink(p);
  try {
    await p.store.waitForStored(2, { timeoutMs: 30_000 });
  } finally {
    service.signal("SIGTERM");
    await service.exited();
    await service.close();
  }
  p.store.faults.reset();
  const run = await spawnEventsink({ ...p, args: ["--until-end"] });
  try {
    assert.equal(await run.exited(60_000), 0, run.output().slice(-3000));
    assert.equal(await replayGroupOf(run), p.group, "in the service group itself");
    const summary = await summaryOf(run);
    assert.equal(summary.end, "0=10,1=10");
    assert.equal(
      summary.groupAtEnd,
      undefined,
      "the service group is neither removed nor kept: it is the service's",
    );
    const started = String(summary.start).split(",").reduce(
      (sum, pair) => sum + Number(pair.split("=")[1]),
      0,
    );
    assert.ok(started >= 2 && started < 20, `started at ${summary.start}`);
    assert.equal(summary.done, 20 - started, "only the records after the service's commits");
    assert.match(run.output(), /Run to the end of \S+ finished/);
    assert.equal(p.store.stored().length, 20);
    assert.deepEqual(await committedOffsets(p.bootstrap, p.group, p.topic), new Map([[0, 10], [1, 10]]));
  } finally {
    await run.close();
  }
});

/**
 * A run of 800 records on one partition whose records after the two batches it holds are deleted while it
 * waits (`--max-rate` keeps it waiting): it ends at its end, names and counts the records lost, exits 3.
 */
async function runWhileRetentionDeletesTheRest(p: Pipeline, args: string[]): Promise<number> {
  const messages = await validMessages(800);
  // Sends of 50 records (about 75 KB each): the partition comes in several fetches of 256 KiB.
  await produceInChunks(p, messages.map((m) => ({ value: m.bytes, partition: 0 })), 50);
  const run = await spawnEventsink({ ...p, args: [...args, "--until-end", "--max-rate", "100"] });
  try {
    // The lane holds two batches and has paused the partition: the records after them are not fetched yet.
    // (A replay's group preparation pauses too, before the run's consumer joined.)
    const pausedAfterJoining = () => {
      const output = run.output();
      return output.indexOf("Pausing fetching", output.indexOf("Partitions assigned")) > 0;
    };
    await waitUntil(
      "the lane paused the partition",
      () => run.output().includes("Partitions assigned") && pausedAfterJoining(),
    );
    await deleteRecords(p.bootstrap, p.topic, 0, 800);
    assert.equal(await run.exited(60_000), 3, `not every record was delivered: ${run.output().slice(-3000)}`);
    const stored = p.store.stored().length;
    assert.ok(stored > 0 && stored < 800, `${stored} stored`);
    const warning = await run.waitForLog((l) => l.msg.includes("were deleted (retention)"), 1_000);
    assert.equal(warning.level, "warn");
    assert.deepEqual([warning.lostFrom, warning.lostTo], [stored, 799], "every record taken was delivered");
    assert.match(run.output(), / of \S+ finished/);
    const deleted = new RegExp(`^  deleted +${(800 - stored).toLocaleString("en-US")}  by retention`, "m");
    assert.match(run.output(), deleted, "the summary counts the records lost");
    return stored;
  } finally {
    await run.close();
  }
}

Deno.test("replay: records deleted (retention) before they were fetched end the run at its end, named in a warning", async () => {
  await using p = await openPipeline(1);
  await runWhileRetentionDeletesTheRest(p, ["--from-beginning"]);
});

Deno.test("run to the end: the service group is committed past records retention deleted, so no start reports them again", async () => {
  await using p = await openPipeline(1);
  const stored = await runWhileRetentionDeletesTheRest(p, []);
  assert.deepEqual(
    await committedOffsets(p.bootstrap, p.group, p.topic),
    new Map([[0, 800]]),
    "at the end offset the run noted",
  );
  // The next record brings the service a batch, with which it would name records lost since the commit.
  const [next] = await validMessages(1);
  await produceInChunks(p, [{ value: next!.bytes, partition: 0 }]);
  const service = await spawnEventsink(p);
  try {
    await p.store.waitForStored(stored + 1, { timeoutMs: 30_000 });
    assert.deepEqual(
      service.lines.filter((l) => l.msg.includes("were deleted (retention)")),
      [],
      "the loss was reported by the run, once",
    );
  } finally {
    await service.close();
  }
});
