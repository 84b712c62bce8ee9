import assert from "node:assert/strict";
import { editDistance, nearest } from "./suggest.ts";

Deno.test("suggest: edit distance counts insertions, deletions, substitutions and swaps", () => {
  const cases: Array<[string, string, number]> = [
    ["", "", 0],
    ["", "abc", 3],
    ["abc", "", 3],
    ["check", "check", 0],
    ["chek", "check", 1],
    ["checks", "check", 1],
    ["cheque", "check", 3],
    ["borkers", "brokers", 1],
    ["topci", "topic", 1],
    ["kitten", "sitting", 3],
  ];
  for (const [a, b, expected] of cases) {
    assert.equal(editDistance(a, b), expected, `${a} → ${b}`);
    assert.equal(editDistance(b, a), expected, `${b} → ${a}`);
  }
});

Deno.test("suggest: the nearest name, only when near enough to be a typo", () => {
  const flags = ["brokers", "topic", "group", "retry-max", "retry-initial"];
  assert.equal(nearest("borkers", flags), "brokers");
  assert.equal(nearest("retry-mx", flags), "retry-max");
  assert.equal(nearest("grop", flags), "group");
  assert.equal(nearest("nope", flags), undefined, "three edits from topic: no guess");
  assert.equal(nearest("x", flags), undefined);
  assert.equal(nearest("chek", ["check", "help"]), "check");
  assert.equal(nearest("hlep", ["check", "help"]), "help");
  assert.equal(nearest("retry-maxx", ["retry-max", "retry-maxi"]), "retry-max", "the first of equals");
});
