import assert from "node:assert/strict";
import { createLogger, type LogFields } from "../log.ts";
import { type Attempted, type RetryDeps, retryUntilDone } from "./retry.ts";

/** Retries on fake time: sleeps are only recorded. */
function harness() {
  const sleeps: number[] = [];
  const lines: Array<{ level: string; msg: string } & LogFields> = [];
  const deps: RetryDeps = {
    policy: { initialMs: 100, maxMs: 1_000 },
    log: createLogger({ level: "debug", format: "json", write: (line) => lines.push(JSON.parse(line)) }),
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    random: () => 0.5,
  };
  return { deps, sleeps, lines };
}

const never = new AbortController().signal;

Deno.test("retry: failures are loud on attempts 1, 10, 100 and 1000, quiet in between", async () => {
  const { deps, lines } = harness();
  const value = await retryUntilDone(deps, (attempt): Promise<Attempted<number>> =>
    Promise.resolve(
      attempt > 1000
        ? { kind: "done", value: attempt }
        : { kind: "again", failure: { message: "failed", fields: { attempt } } },
    ), never);
  assert.equal(value, 1001);
  assert.deepEqual(lines.filter((l) => l.level === "warn").map((l) => l.attempt), [1, 10, 100, 1000]);
  assert.equal(lines.filter((l) => l.level === "debug").length, 996);
});

Deno.test("retry: backoff or the peer's Retry-After between attempts; unlogged failures too", async () => {
  const { deps, sleeps, lines } = harness();
  const answers: Array<Attempted<string>> = [
    { kind: "again" },
    { kind: "again", retryAfterMs: 7_000 },
    { kind: "again" },
    { kind: "done", value: "ok" },
  ];
  assert.equal(await retryUntilDone(deps, () => Promise.resolve(answers.shift()!), never), "ok");
  assert.deepEqual(sleeps, [50, 7_000, 200]);
  assert.deepEqual(lines, []);
});

Deno.test("retry: an abort during a wait rejects with its reason, and no attempt follows", async () => {
  const { deps } = harness();
  const controller = new AbortController();
  let attempts = 0;
  deps.sleep = (_ms, signal) => {
    controller.abort(new Error("revoked"));
    return Promise.reject(signal.reason);
  };
  const attempt = () => {
    attempts++;
    return Promise.resolve<Attempted<void>>({ kind: "again" });
  };
  await assert.rejects(retryUntilDone(deps, attempt, controller.signal), /revoked/);
  assert.equal(attempts, 1);
});
