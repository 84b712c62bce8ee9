import assert from "node:assert/strict";
import { createRequestWaits, isUnknownRequest } from "./responses.ts";

Deno.test("responses: only the store's 'does not exist' 422 is an unknown request", () => {
  const said =
    "EventStore answered 422: Message with ID=0f8b7c2e-3c1a-4a51-9d5e-8f3d2a1b4c6d does not exist.";
  assert.equal(isUnknownRequest({ kind: "rejected", status: 422, reason: said }), true);
  assert.equal(
    isUnknownRequest({
      kind: "rejected",
      status: 422,
      reason: "EventStore answered 422: Bundle.timestamp is required.",
    }),
    false,
  );
  assert.equal(isUnknownRequest({ kind: "rejected", status: 409, reason: said }), false);
  assert.equal(isUnknownRequest({ kind: "delivered", status: 202 }), false);
});

Deno.test("responses: a response waits for its request being delivered, whatever the case of the id", async () => {
  const waits = createRequestWaits();
  const done = waits.taken("ABC-1");
  const order: string[] = [];
  const never = () => new Promise<void>(() => {});
  const response = waits.before("abc-1", 60_000, never).then(() => order.push("response"));
  await Promise.resolve();
  order.push("request");
  done();
  await response;
  assert.deepEqual(order, ["request", "response"]);
});

Deno.test("responses: no wait for a request not being delivered, and the wait is bounded", async () => {
  const waits = createRequestWaits();
  let slept = 0;
  await waits.before("unknown", 5_000, () => Promise.resolve(void slept++));
  assert.equal(slept, 0);
  waits.taken("stuck");
  await waits.before("stuck", 5_000, (ms) => Promise.resolve(void (slept += ms)));
  assert.equal(slept, 5_000, "gave up waiting after the bound");
  waits.taken(undefined)();
});
