import assert from "node:assert/strict";
import { signalAction } from "./signals.ts";

Deno.test("signalAction: during start-up every signal exits at once", () => {
  assert.equal(signalAction(false, 0), "exit");
  assert.equal(signalAction(false, 3), "exit");
});

Deno.test("signalAction: once running, a clean stop, then a hurried one, then nothing more", () => {
  assert.deepEqual([0, 1, 2, 3].map((n) => signalAction(true, n)), ["stop", "hurry", "ignore", "ignore"]);
});
