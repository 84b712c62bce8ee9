import assert from "node:assert/strict";
import { parseCommand } from "../config/parse.ts";
import { type PlanOptions, planRun } from "./run_plan.ts";

const NOW = new Date("2026-11-28T10:15:00.123Z");

function plan(...args: string[]) {
  const parsed = parseCommand(
    ["--eventstore-url", "http://es.test", "--group", "svc", ...args],
    () => undefined,
  );
  assert.equal(parsed.kind, "run");
  return planRun((parsed as { config: PlanOptions }).config, NOW);
}

Deno.test("run plan: the service runs in its group, not by hand", () => {
  assert.deepEqual(plan(), {
    group: "svc",
    byHand: false,
    start: undefined,
    untilEnd: false,
    dryRun: false,
    keepGroup: false,
  });
});

Deno.test("run plan: --until-end alone catches up in the service group and ends", () => {
  const run = plan("--until-end");
  assert.deepEqual([run.group, run.byHand, run.start, run.untilEnd], ["svc", true, undefined, true]);
});

Deno.test("run plan: a replay runs in a fresh group of its own", () => {
  const run = plan("--from-offsets", "0=3", "--keep-group");
  assert.equal(run.group, "svc.replay.20261128T101500Z");
  assert.deepEqual(run.start, { kind: "offsets", offsets: new Map([[0, 3]]) });
  assert.deepEqual([run.byHand, run.untilEnd, run.keepGroup], [true, false, true]);
});

Deno.test("run plan: a dry run starts where the service group stands, in a group of its own, and ends", () => {
  const run = plan("--dry-run");
  assert.equal(run.group, "svc.dry-run.20261128T101500Z");
  assert.deepEqual(run.start, { kind: "committed" });
  assert.deepEqual([run.byHand, run.untilEnd, run.dryRun], [true, true, true]);
  assert.deepEqual(plan("--dry-run", "--from-beginning").start, { kind: "beginning" });
});
