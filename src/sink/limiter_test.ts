import assert from "node:assert/strict";
import { createLimiter } from "./limiter.ts";

Deno.test("limiter: tryAcquire takes a free slot at once and refuses when all are held", () => {
  const limiter = createLimiter(2);
  assert.equal(limiter.tryAcquire(), true);
  assert.equal(limiter.tryAcquire(), true);
  assert.equal(limiter.tryAcquire(), false);
  limiter.release();
  assert.equal(limiter.tryAcquire(), true);
});

Deno.test("limiter: a released slot goes to the one waiting, not to a later tryAcquire", async () => {
  const limiter = createLimiter(1);
  assert.equal(limiter.tryAcquire(), true);
  let granted = false;
  const waiting = limiter.acquire(new AbortController().signal).then(() => granted = true);
  limiter.release();
  assert.equal(limiter.tryAcquire(), false);
  await waiting;
  assert.equal(granted, true);
});

Deno.test("limiter: a wait ends with the signal's reason, and leaves its place", async () => {
  const limiter = createLimiter(1);
  limiter.tryAcquire();
  const abort = new AbortController();
  const waiting = limiter.acquire(abort.signal);
  abort.abort(new Error("revoked"));
  await assert.rejects(waiting, /revoked/);
  limiter.release();
  assert.equal(limiter.tryAcquire(), true);
});
