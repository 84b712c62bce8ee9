import assert from "node:assert/strict";
import {
  advancePositions,
  createRateMeter,
  etaMs,
  failingNote,
  formatCount,
  formatElapsed,
  formatPercent,
  formatProgressLine,
  formatRate,
  type Progress,
  progressFields,
  reachedEnd,
  recordsDone,
  STOPPING_NOTE,
  stripSgr,
} from "./progress.ts";
import type { PartitionStatus, SinkStatus } from "../sink/status.ts";

const COUNTS = {
  consumed: 0,
  delivered: 0,
  deadLettered: 0,
  skipped: 0,
  unfinished: 0,
  deleted: 0,
  retries: 0,
};

function progress(overrides: Partial<Progress> = {}): Progress {
  return {
    elapsedMs: 10_000,
    done: 12_345,
    total: 50_000,
    perSecond: 1_234.4,
    counts: { ...COUNTS, delivered: 12_300, deadLettered: 40, skipped: 5 },
    retrying: 2,
    failing: undefined,
    dryRun: false,
    ...overrides,
  };
}

function status(partitions: Array<Partial<PartitionStatus> & { partition: number }>): SinkStatus {
  return {
    counts: COUNTS,
    phase: "consuming",
    partitions: partitions.map((p) => ({
      committed: undefined,
      next: undefined,
      highWatermark: undefined,
      inFlight: 0,
      ...p,
    })),
  };
}

Deno.test("progress: numbers, rates, percentages and times as a person reads them", () => {
  assert.deepEqual([formatCount(0), formatCount(999), formatCount(1_234), formatCount(50_000_000)], [
    "0",
    "999",
    "1,234",
    "50,000,000",
  ]);
  assert.deepEqual([formatRate(undefined), formatRate(0.25), formatRate(9.96), formatRate(1_234.4)], [
    "--/s",
    "0.3/s",
    "10.0/s",
    "1,234/s",
  ]);
  assert.deepEqual([formatPercent(0, 10), formatPercent(12_345, 50_000), formatPercent(9_999, 10_000)], [
    "0.0%",
    "24.6%",
    "99.9%",
  ]);
  assert.equal(formatPercent(10, 10), "100%");
  assert.equal(formatPercent(0, 0), "100%", "nothing to do is done");
  assert.deepEqual([
    formatElapsed(0),
    formatElapsed(42_400),
    formatElapsed(185_000),
    formatElapsed(7_500_000),
  ], [
    "0s",
    "42s",
    "3m 05s",
    "2h 05m",
  ]);
});

Deno.test("progress: ETA from the rate; unknown without a rate or an end", () => {
  assert.equal(etaMs({ done: 0, total: 1_000, perSecond: 100 }), 10_000);
  assert.equal(etaMs({ done: 1_000, total: 1_000, perSecond: undefined }), 0);
  assert.equal(etaMs({ done: 10, total: 1_000, perSecond: undefined }), undefined);
  assert.equal(etaMs({ done: 10, total: 1_000, perSecond: 0 }), undefined);
  assert.equal(etaMs({ done: 10, total: undefined, perSecond: 5 }), undefined);
});

Deno.test("progress: the rate meter measures over its window", () => {
  const meter = createRateMeter(10_000);
  meter.add(0, 0);
  meter.add(100, 50);
  assert.equal(meter.perSecond(), undefined, "too short to tell");
  for (let t = 1_000; t <= 20_000; t += 1_000) meter.add(t, t < 10_000 ? t : 10_000 + (t - 10_000) * 5);
  // From 10 s on, 5 records a millisecond: only the last ten seconds count.
  assert.equal(meter.perSecond(), 5_000);
});

Deno.test("progress: positions follow the sink and never go back; done, total and the end", () => {
  const positions = new Map([[0, 100], [1, 50]]);
  const bounds = { start: new Map(positions), end: new Map([[0, 200], [1, 50]]) };
  assert.deepEqual(recordsDone(bounds, positions), { done: 0, total: 100 });
  assert.equal(reachedEnd(bounds, positions), false);

  advancePositions(
    positions,
    status([{ partition: 0, committed: 100, next: 150 }, { partition: 7, next: 9 }]),
  );
  assert.deepEqual([...positions], [[0, 150], [1, 50]], "an unknown partition is ignored");
  advancePositions(positions, status([{ partition: 0, committed: 120 }]));
  assert.equal(positions.get(0), 150, "a reassigned partition reporting its commit does not go back");
  assert.deepEqual(recordsDone(bounds, positions), { done: 50, total: 100 });

  advancePositions(positions, status([{ partition: 0, next: 230 }]));
  assert.deepEqual(
    recordsDone(bounds, positions),
    { done: 100, total: 100 },
    "records past the end not counted",
  );
  assert.equal(reachedEnd(bounds, positions), true);
  assert.equal(
    reachedEnd({ start: bounds.start, end: undefined }, positions),
    false,
    "no end: never reached",
  );
  assert.deepEqual(recordsDone({ start: bounds.start, end: undefined }, positions), {
    done: 130,
    total: undefined,
  });
});

Deno.test("progress: the EventStore is reported failing on retries and configuration faults only", () => {
  assert.equal(failingNote({ kind: "delivered", status: 202 }), undefined);
  assert.equal(failingNote({ kind: "rejected", status: 422, reason: "x" }), undefined);
  assert.equal(
    failingNote({ kind: "retry", status: 503, reason: "x" }),
    "EventStore failing (503), retrying",
  );
  assert.match(failingNote({ kind: "retry", reason: "timeout" })!, /unreachable/);
  assert.match(failingNote({ kind: "config-fault", status: 401, reason: "x" })!, /refuses requests \(401\)/);
  assert.equal(
    failingNote({ kind: "config-fault", reason: "Cannot connect to the EventStore: TLS: …" }),
    "Cannot connect to the EventStore as configured (see the log)",
    "no status to show (there was no answer)",
  );
});

Deno.test("progress line: bar, percent, counts, rate, ETA and outcomes", () => {
  const line = formatProgressLine(progress(), { colour: false, width: 200 });
  assert.equal(
    line,
    "[####----------------]   24.6%  12,345/50,000  1,234/s  ETA 31s  |  " +
      "delivered 12,300  dead-lettered 40  skipped 5  retrying 2",
  );
  const unbounded = formatProgressLine(progress({ total: undefined }), { colour: false, width: 200 });
  assert.match(unbounded, /^12,345 records {2}1,234\/s {2}\| {2}delivered/);
  assert.doesNotMatch(unbounded, /ETA|%/);
  const dry = formatProgressLine(
    progress({ dryRun: true, counts: { ...COUNTS, delivered: 9, skipped: 1 } }),
    { colour: false, width: 200 },
  );
  assert.match(dry, /would send 9 {2}would not send 1$/);
  const lossy = formatProgressLine(progress({ counts: { ...COUNTS, delivered: 12_300, deleted: 55 } }), {
    colour: false,
    width: 200,
  });
  assert.match(lossy, /delivered 12,300 .*deleted 55$/, "records lost to retention, once there are any");
  const narrow = formatProgressLine(
    progress({ retrying: 0, counts: { ...COUNTS, delivered: 12_300, deleted: 55 } }),
    { colour: false, width: 90 },
  );
  assert.match(narrow, /\| {2}deleted 55$/, "kept longest of the counts");
});

Deno.test("progress line: fits the width, dropping counts before the failing note", () => {
  const failing = progress({ failing: "EventStore failing (503), retrying" });
  const wide = formatProgressLine(failing, { colour: false, width: 200 });
  assert.match(wide, /retrying 2 {2}! EventStore failing \(503\), retrying$/);
  const narrow = formatProgressLine(failing, { colour: false, width: 110 });
  assert.ok(narrow.length <= 110, narrow);
  assert.match(narrow, /ETA 31s.*! EventStore failing \(503\), retrying$/);
  assert.doesNotMatch(narrow, /retrying 2/);
  assert.ok(formatProgressLine(failing, { colour: false, width: 30 }).length <= 30);
  const stuck = progress({ counts: COUNTS, retrying: 3, failing: "EventStore failing (503), retrying" });
  assert.match(
    formatProgressLine(stuck, { colour: false, width: 120 }),
    /\| {2}retrying 3 {2}! EventStore/,
    "counts at zero go first",
  );
  assert.match(
    formatProgressLine(progress({ perSecond: 3, failing: "EventStore failing (503), retrying" }), {
      colour: false,
      width: 119,
    }),
    /ETA 3h 29m {2}\| {2}retrying 2 {2}! EventStore failing/,
    "the retrying count is kept longest",
  );
});

Deno.test("progress line: in a narrow terminal the figures go before the failing note", () => {
  const failing = progress({ failing: "EventStore failing (503), retrying" });
  assert.equal(
    formatProgressLine(failing, { colour: false, width: 59 }),
    " 24.6%  ETA 31s  ! EventStore failing (503), retrying",
  );
  assert.equal(
    formatProgressLine(failing, { colour: false, width: 79 }),
    " 24.6%  12,345/50,000  1,234/s  ETA 31s  ! EventStore failing (503), retrying",
  );
  assert.equal(
    formatProgressLine(failing, { colour: false, width: 30 }),
    " 24.6%  ! EventStore failing …",
    "cut at the end, and said so, only when nothing else is left",
  );
  const unbounded = formatProgressLine(
    progress({ total: undefined, failing: "EventStore failing (503), retrying" }),
    {
      colour: false,
      width: 59,
    },
  );
  assert.equal(unbounded, "12,345 records  ! EventStore failing (503), retrying");
});

Deno.test("progress line: stopping, it says so and that a second Ctrl-C quits at once", () => {
  const stopping = progress({ stopping: true });
  assert.equal(STOPPING_NOTE, "stopping… (Ctrl-C again to quit)");
  const wide = formatProgressLine(stopping, { colour: false, width: 200 });
  assert.ok(wide.endsWith(`retrying 2  ${STOPPING_NOTE}`), wide);
  assert.doesNotMatch(wide, /ETA/, "a run that stops does not reach its end");
  assert.equal(
    formatProgressLine(progress({ stopping: true, failing: "EventStore failing (503), retrying" }), {
      colour: false,
      width: 79,
    }),
    ` 24.6%  ${STOPPING_NOTE}  ! EventStore failing (503), retrying`,
    "both notes fit an 80-column terminal",
  );
  assert.ok(
    formatProgressLine(stopping, { colour: true, width: 200 }).includes(`\x1b[33m${STOPPING_NOTE}\x1b[0m`),
    "in yellow",
  );
  assert.doesNotMatch(formatProgressLine(progress(), { colour: false, width: 200 }), /stopping/);
});

Deno.test("progress line: colour only when asked, and never counted in the width", () => {
  const plain = formatProgressLine(progress({ failing: "EventStore failing (503), retrying" }), {
    colour: false,
    width: 200,
  });
  const coloured = formatProgressLine(progress({ failing: "EventStore failing (503), retrying" }), {
    colour: true,
    width: 200,
  });
  assert.ok(!plain.includes("\x1b["));
  assert.ok(coloured.includes("\x1b[31m! EventStore failing"), "the failing note in red");
  assert.ok(coloured.includes("\x1b[33mdead-lettered 40"), "dead letters in yellow");
  assert.equal(stripSgr(coloured), plain);
});

Deno.test("progress fields: the plain progress log line", () => {
  assert.deepEqual(progressFields(progress()), {
    done: 12_345,
    total: 50_000,
    percent: "24.6%",
    perSecond: 1_234,
    eta: "31s",
    delivered: 12_300,
    deadLettered: 40,
    skipped: 5,
    retrying: 2,
    deleted: undefined,
    eventstore: undefined,
  });
  const lossy = progressFields(progress({ counts: { ...COUNTS, delivered: 12_300, deleted: 55 } }));
  assert.equal(lossy.deleted, 55, "records lost to retention, once there are any");
  const dry = progressFields(progress({ dryRun: true, total: undefined, perSecond: undefined }));
  assert.deepEqual([dry.wouldSend, dry.wouldNotSend, dry.percent, dry.eta], [
    12_300,
    5,
    undefined,
    undefined,
  ]);
});
