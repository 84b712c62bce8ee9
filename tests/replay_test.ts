/**
 * Replays and other runs by hand, end to end: real broker, the EventStore stand-in, eventsink as its own
 * process. Bounded runs, start positions, the service group left alone, dry runs and the rate limit.
 */
import assert from "node:assert/strict";
import {
  committedOffsets,
  committedOffsetsByKafkaTool,
  createTopic,
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
      [summary.done, summary.total, summary.delivered, summary.deadLettered, summary.skipped, summary.unfinished],
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
      return body === undefined || body.length !== values[i]!.length || !body.every((b, j) => b === values[i]![j]);
    });
    assert.equal(mismatched.length, 0, "every message stored byte for byte");
    assert.equal(p.store.requests().length, 50_000, "each record posted once");
    assert.ok(await groupIsGone(p, String(summary.group)), "the replay group is removed");
    assert.ok(run.lines.some((l) => l.msg === "Progress" && typeof l.done === "number"), "progress lines");
    assert.match(run.output(), /Replay of \S+ finished in .*: 50,000 of 50,000 records/);
  } finally {
    await run.close();
  }
});
