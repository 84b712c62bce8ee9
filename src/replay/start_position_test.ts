import assert from "node:assert/strict";
import { formatOffsets, parseFromOffsets, parseTimestamp, resolveStart } from "./start_position.ts";

function parsed<T>(parse: (text: string, errors: string[]) => T | undefined, text: string): T {
  const errors: string[] = [];
  const value = parse(text, errors);
  assert.deepEqual(errors, []);
  return value!;
}

function problem<T>(parse: (text: string, errors: string[]) => T | undefined, text: string): string {
  const errors: string[] = [];
  assert.equal(parse(text, errors), undefined);
  assert.equal(errors.length, 1);
  return errors[0]!;
}

Deno.test("--from-offsets: partition=offset pairs", () => {
  assert.deepEqual([...parsed(parseFromOffsets, "0=120,1=55")], [[0, 120], [1, 55]]);
  assert.deepEqual([...parsed(parseFromOffsets, " 3=0 , 12=9007199254740 ")], [[3, 0], [12, 9007199254740]]);
  assert.match(
    problem(parseFromOffsets, "0:120"),
    /"0:120" is not partition=offset \(e\.g\. --from-offsets 0=120,1=55\)/,
  );
  assert.match(problem(parseFromOffsets, "0=-1"), /"0=-1"/);
  assert.match(problem(parseFromOffsets, "0=1,"), /"" is not partition=offset/);
  assert.match(problem(parseFromOffsets, "1=5,1=6"), /names partition 1 twice/);
});

Deno.test("--from-offsets: printed in the form it is read, in partition order", () => {
  assert.equal(formatOffsets(new Map([[2, 7], [0, 120], [1, 55]])), "0=120,1=55,2=7");
  assert.deepEqual(
    parsed(parseFromOffsets, formatOffsets(new Map([[0, 1], [1, 2]]))),
    new Map([[0, 1], [1, 2]]),
  );
});

Deno.test("--from-timestamp: ISO 8601 with a zone, or a date at midnight UTC", () => {
  assert.equal(parsed(parseTimestamp, "2026-11-28T10:15:00Z"), Date.UTC(2026, 10, 28, 10, 15));
  assert.equal(
    parsed(parseTimestamp, "2026-11-28T11:15:00.250+01:00"),
    Date.UTC(2026, 10, 28, 10, 15, 0, 250),
  );
  assert.equal(parsed(parseTimestamp, "2026-11-28T10:15Z"), Date.UTC(2026, 10, 28, 10, 15));
  assert.equal(parsed(parseTimestamp, "2026-11-28"), Date.UTC(2026, 10, 28));
  assert.match(problem(parseTimestamp, "2026-11-28T10:15:00"), /with a zone/, "local time is ambiguous");
  assert.match(problem(parseTimestamp, "2026-13-01"), /got "2026-13-01"/);
  assert.match(problem(parseTimestamp, "yesterday"), /ISO 8601/);
});

const RANGES = [
  { partition: 0, low: 100, high: 200 },
  { partition: 1, low: 0, high: 50 },
  { partition: 2, low: 30, high: 30 },
];

Deno.test("start: from the beginning, the earliest record left", () => {
  assert.deepEqual([...resolveStart({ kind: "beginning" }, { ranges: RANGES })], [[0, 100], [1, 0], [2, 30]]);
});

Deno.test("start: from the group's committed offsets, the earliest where none or deleted", () => {
  const committed = new Map([[0, 50], [1, 20]]);
  assert.deepEqual([...resolveStart({ kind: "committed" }, { ranges: RANGES, committed })], [
    [0, 100],
    [1, 20],
    [2, 30],
  ]);
});

Deno.test("start: from a timestamp, the broker's offsets, the end where no record is that late", () => {
  const atTimestamp = new Map([[0, 150], [1, 50]]);
  assert.deepEqual([...resolveStart({ kind: "timestamp", ms: 0 }, { ranges: RANGES, atTimestamp })], [
    [0, 150],
    [1, 50],
    [2, 30],
  ]);
});

Deno.test("start: from given offsets; unlisted partitions start at their end", () => {
  const spec = { kind: "offsets" as const, offsets: new Map([[0, 120], [1, 50]]) };
  assert.deepEqual([...resolveStart(spec, { ranges: RANGES })], [[0, 120], [1, 50], [2, 30]]);
});

Deno.test("start: given offsets outside the records, or of partitions the topic lacks, are refused", () => {
  const at = (offsets: Array<[number, number]>) => () =>
    resolveStart({ kind: "offsets", offsets: new Map(offsets) }, { ranges: RANGES });
  assert.throws(
    at([[0, 99]]),
    /--from-offsets 0=99 is outside partition 0's records \(offsets 100 to 199; its end is 200\)/,
  );
  assert.throws(at([[1, 51]]), /1=51 is outside/);
  assert.throws(at([[2, 0]]), /none left; its end is 30/);
  assert.throws(at([[3, 0], [4, 0]]), /names partition 3, 4, which the topic does not have \(it has 3\)/);
});
