import assert from "node:assert/strict";
import type { RunPlan } from "./run_plan.ts";
import { exitCodeOf, type RunResult, summaryFields, summaryLines } from "./summary.ts";

const PLAN: RunPlan = {
  group: "svc.replay.20261128T101500Z",
  byHand: true,
  start: { kind: "beginning" },
  untilEnd: true,
  dryRun: false,
  keepGroup: false,
};
const COUNTS = {
  consumed: 300,
  delivered: 300,
  deadLettered: 0,
  skipped: 0,
  unfinished: 0,
  deleted: 0,
  retries: 4,
};

function result(overrides: Partial<RunResult> = {}): RunResult {
  return {
    plan: PLAN,
    topic: "rapid",
    elapsedMs: 61_000,
    counts: COUNTS,
    bounds: { start: new Map([[0, 0], [1, 100]]), end: new Map([[0, 150], [1, 250]]) },
    positions: new Map([[0, 150], [1, 250]]),
    failed: false,
    deadLetterTopic: undefined,
    group: "removed",
    ...overrides,
  };
}

Deno.test("exit code: 0 all delivered, 3 some dead-lettered, skipped or deleted, 1 failed or short of the end", () => {
  assert.equal(exitCodeOf(result()), 0);
  assert.equal(exitCodeOf(result({ counts: { ...COUNTS, delivered: 299, deadLettered: 1 } })), 3);
  assert.equal(exitCodeOf(result({ counts: { ...COUNTS, delivered: 299, skipped: 1 } })), 3);
  assert.equal(
    exitCodeOf(result({ counts: { ...COUNTS, delivered: 290, deleted: 10 } })),
    3,
    "lost to retention",
  );
  assert.equal(exitCodeOf(result({ failed: true })), 1);
  assert.equal(exitCodeOf(result({ positions: new Map([[0, 150], [1, 249]]) })), 1, "stopped before the end");
  const unbounded = { ...PLAN, untilEnd: false };
  assert.equal(
    exitCodeOf(result({ plan: unbounded, bounds: { start: new Map([[0, 0]]), end: undefined } })),
    0,
    "a run without an end, stopped by a signal, is not short of anything",
  );
});

Deno.test("summary: a finished replay", () => {
  const lines = summaryLines(
    result({ counts: { ...COUNTS, delivered: 290, deadLettered: 10 }, deadLetterTopic: "rapid.dlq" }),
    { colour: false },
  );
  assert.deepEqual(lines, [
    "Replay of rapid finished in 1m 01s",
    "  records               300  of 300, at 4.9/s",
    "  delivered             290",
    "  dead-lettered          10  to topic rapid.dlq",
    "  skipped                 0",
    "  retries                 4",
    "  dead letters   topic rapid.dlq",
    "  partition         start       reached           end",
    "          0             0           150           150",
    "          1           100           250           250",
    "  group          svc.replay.20261128T101500Z (removed)",
    "exit 3: some records were dead-lettered or skipped",
  ]);
});

Deno.test("summary: records Kafka deleted before delivery are counted, and the verdict names them", () => {
  const lines = summaryLines(result({ counts: { ...COUNTS, delivered: 280, skipped: 1, deleted: 19 } }), {
    colour: false,
  });
  assert.ok(lines.includes("  deleted                19  by retention before delivery: lost, see the log"));
  assert.equal(
    lines.at(-1),
    "exit 3: some records were deleted (retention) before delivery, others dead-lettered or skipped",
  );
  const only = summaryLines(result({ counts: { ...COUNTS, delivered: 281, deleted: 19 } }), {
    colour: false,
  });
  assert.equal(only.at(-1), "exit 3: some records were deleted (retention) before delivery");
});

Deno.test("summary: stopped before the end, it says where to go on from", () => {
  const lines = summaryLines(
    result({ positions: new Map([[0, 80], [1, 250]]), counts: { ...COUNTS, delivered: 230, unfinished: 2 } }),
    { colour: false },
  );
  assert.equal(lines[0], "Replay of rapid stopped before the end in 1m 01s");
  assert.equal(lines[1], "  records               230  of 300, at 3.8/s");
  assert.ok(lines.includes("  unfinished              2  not committed: delivered again by the next run"));
  assert.ok(lines.includes("  to go on from here: --from-offsets 0=80,1=250"));
  assert.equal(lines.at(-1), "exit 1: stopped before the end");
});

Deno.test("summary: a dry run says what would be sent; colour only when asked", () => {
  const dry = { ...PLAN, dryRun: true, start: { kind: "committed" as const }, group: "svc.dry-run.x" };
  const lines = summaryLines(
    result({
      plan: dry,
      counts: { ...COUNTS, delivered: 299, skipped: 1 },
      largest: { bytes: 4_321, at: "rapid/1@17" },
    }),
    { colour: true },
  );
  assert.match(lines[0]!, /^Dry run of rapid finished/);
  assert.ok(lines.includes("  would send            299"));
  assert.ok(lines.includes("  would not send          1  invalid records and tombstones: see the log"));
  assert.ok(lines.includes("  largest value       4,321 bytes at rapid/1@17"));
  assert.ok(lines.includes("  dead letters   none written (dry run)"));
  assert.equal(lines.at(-1), "\x1b[33mexit 3: some records would not be sent\x1b[0m");
});

Deno.test("summary: within 80 columns, with the default names and large numbers", () => {
  const counts = {
    consumed: 12_345_678,
    delivered: 12_000_000,
    deadLettered: 0,
    skipped: 345_000,
    unfinished: 678,
    deleted: 0,
    retries: 1_234_567,
  };
  const plan = { ...PLAN, group: "hops-eventsink-group.replay.20261128T101500Z", untilEnd: false };
  for (const group of ["removed", "kept", "not removed"] as const) {
    const lines = summaryLines(
      result({
        plan,
        topic: "helseopplysninger.rapid",
        elapsedMs: 7_500_000,
        counts,
        bounds: { start: new Map([[0, 0], [1, 0]]), end: undefined },
        positions: new Map([[0, 6_000_000], [1, 6_345_678]]),
        failed: true,
        group,
      }),
      { colour: false },
    );
    assert.deepEqual(lines.filter((line) => line.length > 80), [], lines.join("\n"));
    assert.equal(lines[0], "Replay of helseopplysninger.rapid failed in 2h 05m");
    assert.equal(lines[1], "  records        12,345,678  at 1,646/s");
    assert.ok(lines.includes("  dead letters   none written (no --dead-letter-topic)"));
  }
});

Deno.test("summary: as log fields", () => {
  assert.deepEqual(summaryFields(result()), {
    group: "svc.replay.20261128T101500Z",
    groupAtEnd: "removed",
    durationMs: 61_000,
    done: 300,
    total: 300,
    ...COUNTS,
    start: "0=0,1=100",
    reached: "0=150,1=250",
    end: "0=150,1=250",
    deadLetterTopic: undefined,
    exitCode: 0,
  });
});
