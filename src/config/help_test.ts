import assert from "node:assert/strict";
import { helpText, wrap } from "./help.ts";
import { ENV_NAMES, OPTIONS } from "./options.ts";

Deno.test("help: wrap breaks at spaces within the width, with a hanging indent", () => {
  assert.deepEqual(wrap("one two three four", 10, "  ", "    "), ["  one two", "    three", "    four"]);
  assert.deepEqual(wrap("a  b", 80, ""), ["a b"], "runs of spaces are one");
  assert.deepEqual(wrap("unbreakable-word x", 5, ""), ["unbreakable-word", "x"], "a long word stays whole");
  assert.deepEqual(wrap("", 10, "  "), ["  "]);
});

Deno.test("help: every line within the columns (50 to 100), every flag and variable still there", () => {
  for (const [columns, width] of [[80, 80], [60, 60], [20, 50], [250, 100]]) {
    const text = helpText(columns!);
    const wide = text.split("\n").filter((line) => line.length > width!);
    assert.deepEqual(wide, [], `at ${columns} columns`);
    for (const option of OPTIONS) {
      assert.ok(text.includes(`--${option.flag}`), `--${option.flag} at ${columns}`);
    }
    for (const name of ENV_NAMES) assert.ok(text.includes(name), `${name} at ${columns}`);
  }
  assert.match(
    helpText(80),
    /^ {2}--brokers <host:port,…>\n {6}Kafka bootstrap brokers, comma-separated\.\n {6}env: /m,
  );
});
