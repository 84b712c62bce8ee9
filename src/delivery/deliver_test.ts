import assert from "node:assert/strict";
import { createLogger, type LogFields } from "../log.ts";
import type { Outcome } from "./outcome.ts";
import { alarmThrottle, deliverWithRetries, type DeliverWithRetriesDeps } from "./deliver.ts";

/** A delivery on fake time: answers come from a script, sleeps only move the clock. */
function harness(answers: Outcome[], policy: Partial<DeliverWithRetriesDeps["policy"]> = {}) {
  let clock = 0;
  const sleeps: number[] = [];
  const lines: Array<{ level: string; msg: string } & LogFields> = [];
  const deps: DeliverWithRetriesDeps = {
    attempt: () => Promise.resolve(answers.shift() ?? { kind: "delivered", status: 202 }),
    policy: {
      initialMs: 100,
      maxMs: 1_000,
      giveUpMs: undefined,
      poison: undefined,
      responseWaitMs: undefined,
      ...policy,
    },
    log: createLogger({ level: "debug", format: "json", write: (line) => lines.push(JSON.parse(line)) }),
    sleep: (ms) => {
      sleeps.push(ms);
      clock += ms;
      return Promise.resolve();
    },
    now: () => clock,
    shouldAlarm: alarmThrottle(60_000, () => clock),
    random: () => 0.5,
  };
  return { deps, sleeps, lines };
}

const RETRY_503: Outcome = { kind: "retry", status: 503, reason: "EventStore answered 503" };

Deno.test("deliver: delivered at once", async () => {
  const { deps, sleeps } = harness([{ kind: "delivered", status: 202 }]);
  assert.deepEqual(await deliverWithRetries(deps, new AbortController().signal), {
    kind: "delivered",
    status: 202,
    attempts: 1,
  });
  assert.deepEqual(sleeps, []);
});

Deno.test("deliver: transient failures back off exponentially, then deliver", async () => {
  const { deps, sleeps, lines } = harness([RETRY_503, RETRY_503, RETRY_503, RETRY_503]);
  const result = await deliverWithRetries(deps, new AbortController().signal);
  assert.deepEqual(result, { kind: "delivered", status: 202, attempts: 5 });
  assert.deepEqual(sleeps, [50, 100, 200, 400]);
  assert.equal(lines.filter((l) => l.level === "warn").length, 1, "only the first failure is loud");
});

Deno.test("deliver: Retry-After is honoured", async () => {
  const { deps, sleeps } = harness([{ ...RETRY_503, retryAfterMs: 7_000 }]);
  await deliverWithRetries(deps, new AbortController().signal);
  assert.deepEqual(sleeps, [7_000]);
});

Deno.test("deliver: a rejection ends at once with the reason", async () => {
  const { deps, sleeps } = harness([{ kind: "rejected", status: 422, reason: "EventStore answered 422: x" }]);
  assert.deepEqual(await deliverWithRetries(deps, new AbortController().signal), {
    kind: "rejected",
    status: 422,
    reason: "EventStore answered 422: x",
    attempts: 1,
  });
  assert.deepEqual(sleeps, []);
});

Deno.test("deliver: without a give-up time, transient failures are retried for ever", async () => {
  const { deps } = harness(Array.from({ length: 500 }, () => RETRY_503));
  const result = await deliverWithRetries(deps, new AbortController().signal);
  assert.deepEqual(result, { kind: "delivered", status: 202, attempts: 501 });
});

Deno.test("deliver: with a give-up time, a transient failure turns into a rejection", async () => {
  const { deps } = harness(Array.from({ length: 500 }, () => RETRY_503), { giveUpMs: 5_000 });
  const result = await deliverWithRetries(deps, new AbortController().signal);
  assert.equal(result.kind, "rejected");
  assert.match(
    (result as { reason: string }).reason,
    /gave up after \d+ attempts .* EventStore answered 503/,
  );
});

Deno.test("deliver: configuration faults are never given up on, and alarm once per interval", async () => {
  const fault: Outcome = { kind: "config-fault", status: 404, reason: "EventStore answered 404" };
  const { deps, lines } = harness(Array.from({ length: 300 }, () => fault), { giveUpMs: 1_000 });
  const result = await deliverWithRetries(deps, new AbortController().signal);
  assert.equal(result.kind, "delivered");
  const alarms = lines.filter((l) => l.level === "error");
  assert.ok(alarms.length >= 2 && alarms.length < 10, `${alarms.length} alarms over ~5 minutes of fake time`);
  assert.equal(alarms[0]!.status, 404);
});

Deno.test("deliver: a record that met a configuration fault is not given up on when transient failures follow", async () => {
  const fault: Outcome = {
    kind: "config-fault",
    reason: "TLS: the server refused eventsink's client certificate",
  };
  const dropped: Outcome = {
    kind: "retry",
    reason: "peer closed connection without sending TLS close_notify",
  };
  const answers = Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? fault : dropped));
  const { deps } = harness(answers, { giveUpMs: 1_000 });
  const result = await deliverWithRetries(deps, new AbortController().signal);
  assert.deepEqual(result, { kind: "delivered", status: 202, attempts: 201 });
});

Deno.test("deliver: an abort ends the retries and rejects, leaving the record unaccounted", async () => {
  const controller = new AbortController();
  const { deps } = harness([RETRY_503, RETRY_503]);
  deps.sleep = (_ms, signal) => {
    controller.abort(new Error("revoked"));
    return Promise.reject(signal.reason);
  };
  await assert.rejects(deliverWithRetries(deps, controller.signal), /revoked/);
});

const BROKEN_CONSTRAINT = "EventStore answered 500: duplicate key value violates unique constraint";

/** Delivers a record answered 500 (`reason`) every time, with evidence that answers and probes as told. */
async function deliverPoison(evidence: { answers: boolean; probe: boolean }, reason = BROKEN_CONSTRAINT) {
  const answers = Array.from({ length: 1_000 }, (): Outcome => ({ kind: "retry", status: 500, reason }));
  const { deps } = harness(answers, { maxMs: 60_000, poison: { attempts: 10, afterMs: 300_000 } });
  let poisoned = 0;
  const probedAt: number[] = [];
  const result = await deliverWithRetries({
    ...deps,
    evidence: {
      stored: () => {},
      failing: () => () => {},
      storedSince: () => evidence.answers,
      worksSince: () => {
        probedAt.push(deps.now());
        return Promise.resolve(evidence.probe);
      },
      probe: () => Promise.reject(new Error("not used")),
    },
    onPoison: () => poisoned++,
  }, new AbortController().signal);
  return { result, poisoned, probedAt, endedAt: deps.now() };
}

Deno.test("deliver: a record failing alone while others are answered is taken as rejected, as poison", async () => {
  const { result, poisoned, probedAt, endedAt } = await deliverPoison({ answers: true, probe: false });
  assert.equal(result.kind, "rejected");
  assert.ok(result.attempts >= 10, `after ${result.attempts} attempts`);
  assert.ok(endedAt >= 300_000 && endedAt < 400_000, `after ${endedAt} ms`);
  assert.equal((result as { status: number }).status, 500);
  assert.match(
    (result as { reason: string }).reason,
    /^failed on all \d+ attempts over \S+ while the EventStore worked, so it is taken as rejected \(--poison-after\): EventStore answered 500: duplicate key/,
  );
  assert.equal(poisoned, 1);
  assert.deepEqual(probedAt, [], "answers about other messages need no probe");
});

Deno.test("deliver: with nothing else answered, the probe is the evidence, asked only past the bound", async () => {
  const { result, poisoned, probedAt, endedAt } = await deliverPoison(
    { answers: false, probe: true },
    "EventStore answered 500: java.lang.NullPointerException",
  );
  assert.equal(result.kind, "rejected");
  assert.equal(poisoned, 1);
  assert.ok(probedAt.length > 0 && probedAt[0]! >= 300_000, `first probed at ${probedAt[0]} ms`);
  // The attempts before the first probe are not known to have failed while the store worked.
  assert.ok(endedAt >= probedAt[0]! + 300_000, `poison at ${endedAt} ms`);
});

Deno.test("deliver: a 500 naming a unique constraint the record breaks is evidence enough: poison, no probe", async () => {
  // Other records failing at the same time (a faulty producer's), none stored: the probe would not be asked.
  const { result, poisoned, probedAt, endedAt } = await deliverPoison({ answers: false, probe: false });
  assert.equal(result.kind, "rejected");
  assert.equal(poisoned, 1);
  assert.ok(result.attempts >= 10 && endedAt >= 300_000 && endedAt < 400_000, `at ${endedAt} ms`);
  assert.deepEqual(probedAt, []);
});

Deno.test("deliver: failures while the EventStore answered nothing do not count toward poison", async () => {
  // A store frozen for 10 minutes: every attempt times out. Resumed, it answers the retry racing its own
  // first attempt 500 (the Bundle.id constraint), then 202.
  const resumedAt = 600_000;
  let raced = false;
  const { deps } = harness([], { maxMs: 60_000, poison: { attempts: 10, afterMs: 300_000 } });
  let poisoned = 0;
  const result = await deliverWithRetries({
    ...deps,
    attempt: () => {
      if (deps.now() < resumedAt) {
        return Promise.resolve({ kind: "retry", reason: "no answer within 30000 ms" });
      }
      if (raced) return Promise.resolve({ kind: "delivered", status: 202 });
      raced = true;
      return Promise.resolve({ kind: "retry", status: 500, reason: BROKEN_CONSTRAINT });
    },
    evidence: {
      stored: () => {},
      failing: () => () => {},
      // It worked after `since` when it works now: only from its resumption on.
      storedSince: () => deps.now() >= resumedAt,
      worksSince: () => Promise.resolve(deps.now() >= resumedAt),
      probe: () => Promise.reject(new Error("not used")),
    },
    onPoison: () => poisoned++,
  }, new AbortController().signal);
  assert.equal(result.kind, "delivered");
  assert.ok(result.attempts > 10, `after ${result.attempts} attempts`);
  assert.equal(poisoned, 0);
});

Deno.test("deliver: an outage is never poison, however long; nor a 429 or a configuration fault", async () => {
  for (
    const failure of [RETRY_503, { ...RETRY_503, status: 429 }, {
      kind: "config-fault",
      status: 401,
      reason: "x",
    }]
  ) {
    const { deps } = harness(Array.from({ length: 3_000 }, () => failure as Outcome), {
      maxMs: 60_000,
      poison: { attempts: 10, afterMs: 300_000 },
    });
    const works = failure.status === 503 ? false : true;
    const result = await deliverWithRetries({
      ...deps,
      evidence: {
        stored: () => {},
        failing: () => () => {},
        storedSince: () => false,
        worksSince: () => Promise.resolve(works),
        probe: () => Promise.reject(),
      },
    }, new AbortController().signal);
    assert.deepEqual(result, { kind: "delivered", status: 202, attempts: 3_001 }, JSON.stringify(failure));
  }
});

Deno.test("deliver: a message stored is evidence that the EventStore works; a rejection is not", async () => {
  let stored = 0;
  const evidence = {
    stored: () => stored++,
    storedSince: () => false,
    failing: () => () => {},
    worksSince: () => Promise.resolve(false),
    probe: () => Promise.reject(),
  };
  const rejected = harness([{ kind: "rejected", status: 422, reason: "x" }]);
  await deliverWithRetries({ ...rejected.deps, evidence }, new AbortController().signal);
  assert.equal(stored, 0, "a store that cannot write still validates and rejects");
  const delivered = harness([]);
  await deliverWithRetries({ ...delivered.deps, evidence }, new AbortController().signal);
  assert.equal(stored, 1);
});

const UNKNOWN_REQUEST: Outcome = {
  kind: "rejected",
  status: 422,
  reason: "EventStore answered 422: Message with ID=6e2c1639-6c29-4707-ab2b-99c0455b2a65 does not exist.",
};

Deno.test("deliver: a response whose request is not stored yet is retried for --response-wait, then stored", async () => {
  const { deps, lines } = harness([UNKNOWN_REQUEST, UNKNOWN_REQUEST, UNKNOWN_REQUEST], {
    responseWaitMs: 60_000,
  });
  const result = await deliverWithRetries({ ...deps, answers: "6e2c1639" }, new AbortController().signal);
  assert.deepEqual(result, { kind: "delivered", status: 202, attempts: 4 });
  assert.ok(lines.some((l) => l.msg === "The message this one answers is not stored yet, will retry"));
});

Deno.test("deliver: ... and rejected after the window with the store's text; other 422s and non-responses at once", async () => {
  const forever = Array.from({ length: 1_000 }, () => UNKNOWN_REQUEST);
  const { deps } = harness(forever, { responseWaitMs: 10_000 });
  const late = await deliverWithRetries({ ...deps, answers: "x" }, new AbortController().signal);
  assert.equal(late.kind, "rejected");
  assert.ok(deps.now() >= 10_000);
  assert.match(
    (late as { reason: string }).reason,
    /^EventStore answered 422: Message with ID=\S+ does not exist\. \(still after --response-wait 10s\)$/,
  );
  for (
    const [answers, outcome] of [["x", { ...UNKNOWN_REQUEST, reason: "EventStore answered 422: x" }], [
      undefined,
      UNKNOWN_REQUEST,
    ]] as const
  ) {
    const once = harness([outcome], { responseWaitMs: 10_000 });
    const result = await deliverWithRetries({ ...once.deps, answers }, new AbortController().signal);
    assert.equal(result.kind === "rejected" && result.attempts, 1);
  }
  const off = harness([UNKNOWN_REQUEST], { responseWaitMs: undefined });
  assert.equal(
    (await deliverWithRetries({ ...off.deps, answers: "x" }, new AbortController().signal)).attempts,
    1,
  );
});
