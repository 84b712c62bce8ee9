import assert from "node:assert/strict";
import { BodyStart } from "./body_start.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("body start: keeps the first bytes over chunks and says whether it was all", () => {
  const whole = new BodyStart(8);
  whole.add(bytes("abc"));
  whole.add(bytes("defgh"));
  assert.deepEqual([whole.text(), whole.full, whole.complete], ["abcdefgh", true, true]);

  const cut = new BodyStart(4);
  cut.add(bytes("abc"));
  cut.add(bytes("defgh"));
  assert.deepEqual([cut.text(), cut.full, cut.complete], ["abcd", true, false]);

  const empty = new BodyStart(4);
  assert.deepEqual([empty.text(), empty.full, empty.complete], ["", false, true]);
});

Deno.test("body start: a UTF-8 sequence cut at the limit becomes U+FFFD, never an error", () => {
  const start = new BodyStart(2);
  start.add(bytes("aø"));
  assert.equal(start.text(), "a\uFFFD");
});
