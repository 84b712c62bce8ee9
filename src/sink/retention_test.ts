import assert from "node:assert/strict";
import { lossReport, markAtAssignment, markAtOutOfRange } from "./retention.ts";

const where = { topic: "t", partition: 3 };

Deno.test("retention: a committed offset below the earliest record kept marks a loss at assignment", () => {
  assert.equal(markAtAssignment(undefined, { partition: 3, committed: 40, earliest: 100 }), 40);
  assert.equal(markAtAssignment(undefined, { partition: 3, committed: 100, earliest: 100 }), undefined);
  assert.equal(markAtAssignment(undefined, { partition: 3, committed: undefined, earliest: 100 }), undefined);
});

Deno.test("retention: an out-of-range seen before the assignment's offsets is placed by them", () => {
  // KafkaJS said "out of range" before the group's committed offset was known.
  assert.equal(markAtAssignment("unknown", { partition: 3, committed: 40, earliest: 100 }), 40);
  assert.equal(markAtAssignment("unknown", { partition: 3, committed: 120, earliest: 100 }), 120);
  assert.equal(markAtAssignment("unknown", { partition: 3, committed: undefined, earliest: 100 }), "unknown");
});

Deno.test("retention: out of range starts the loss after the last record taken, else at the committed offset", () => {
  assert.equal(markAtOutOfRange(57, 10), 58);
  assert.equal(markAtOutOfRange(undefined, 10), 10);
  assert.equal(markAtOutOfRange(undefined, undefined), "unknown");
});

Deno.test("retention: the report names the records lost and where the partition resumes", () => {
  const report = lossReport(40, { ...where, earliest: 100 });
  assert.equal(
    report?.message,
    "Records 40 to 99 (60) of partition 3 were deleted (retention) before eventsink delivered them: they are " +
      "lost to this sink. Resuming at the earliest record left",
  );
  assert.deepEqual(report?.fields, { topic: "t", partition: 3, lostFrom: 40, lostTo: 99, resumeAt: 100 });
  assert.equal(report?.lost, 60);
});

Deno.test("retention: an unknown start still says records before the earliest were deleted", () => {
  const report = lossReport("unknown", { ...where, earliest: 100 });
  assert.match(report!.message, /^Records of partition 3 before offset 100 were deleted \(retention\)/);
  assert.equal(report!.fields.lostFrom, undefined);
  assert.equal(report!.lost, 0, "not counted: how many is not known");
});

Deno.test("retention: nothing is reported when the first batch starts at or before the mark", () => {
  assert.equal(lossReport(100, { ...where, earliest: 100 }), undefined);
  assert.equal(lossReport(120, { ...where, earliest: 100 }), undefined);
});
