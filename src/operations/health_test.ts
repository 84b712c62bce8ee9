/** Liveness, readiness, the EventStore's health from delivery attempts, lag and the status line. */
import assert from "node:assert/strict";
import { createAttemptLog, SUCCESS_WINDOW_MS } from "./store_watch.ts";
import { liveness, readiness, storeProblem, WEDGED_AFTER_MS } from "./health.ts";
import { partitionProgress, statusLine } from "./lag.ts";
import type { SinkStatus } from "../sink/status.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const unavailable = { kind: "retry", status: 503, reason: "EventStore answered 503: down" } as const;
const refused = { kind: "config-fault", status: 401, reason: "EventStore answered 401" } as const;

Deno.test("attempts: an idle sink's probes tell health, and are neither counted as requests nor as activity", () => {
  let now = T0;
  const attempts = createAttemptLog(() => now);
  assert.equal(attempts.quietFor(), Infinity);
  attempts.observe({ kind: "delivered", status: 202 }, 5);
  now += 40_000;
  assert.equal(attempts.quietFor(), 40_000);
  attempts.probed({ kind: "retry", reason: "Cannot reach the EventStore: connection refused" });
  assert.equal(attempts.health().kind, "failing", "the store went away while the sink was idle");
  assert.equal(attempts.quietFor(), 40_000, "still idle: the next probe comes on time");
  now += 30_000;
  attempts.probed({ kind: "delivered", status: 200 });
  assert.deepEqual(attempts.health(), { kind: "ok", at: T0 + 70_000 });
  assert.equal(attempts.stats().retries, 0);
  assert.deepEqual(attempts.stats().requestsByClass, { "2xx": 1 });
  assert.equal(attempts.stats().lastDeliveredAt, T0, "a probe delivers nothing");
});

Deno.test("attempts: the EventStore is unknown, then failing from the first failure, then ok again", () => {
  let now = T0;
  const attempts = createAttemptLog(() => now);
  assert.deepEqual(attempts.health(), { kind: "unknown" });
  attempts.observe(unavailable, 5);
  now += 1000;
  attempts.observe(refused, 5);
  assert.deepEqual(attempts.health(), { kind: "failing", since: T0, outcome: refused });
  now += 1000;
  attempts.observe({ kind: "rejected", status: 422, reason: "invalid" }, 5);
  assert.deepEqual(attempts.health(), { kind: "ok", at: T0 + 2000 }, "a rejection is an answer too");
  assert.equal(attempts.stats().retries, 2);
  assert.equal(attempts.stats().lastDeliveredAt, undefined, "a rejection is no delivery");
  attempts.observe({ kind: "delivered", status: 202 }, 5);
  assert.equal(attempts.stats().lastDeliveredAt, T0 + 2000);
  assert.deepEqual(attempts.stats().requestsByClass, { "2xx": 1, "4xx": 2, "5xx": 1 });
});

Deno.test("attempts: one record failing among deliveries does not make the EventStore failing", () => {
  let now = T0;
  const attempts = createAttemptLog(() => now);
  attempts.observe({ kind: "delivered", status: 202 }, 5);
  now += 1000;
  attempts.observe(unavailable, 5);
  assert.equal(attempts.health().kind, "ok", "a success within the window");
  now += SUCCESS_WINDOW_MS;
  assert.deepEqual(attempts.health(), { kind: "failing", since: T0 + 1000, outcome: unavailable });
});

Deno.test("readiness: consuming, assigned, and the EventStore not failing", () => {
  const view = { phase: "consuming", topic: "fhir", partitions: 2, store: { kind: "unknown" } } as const;
  assert.deepEqual(readiness(view), {
    ok: true,
    reason: "consuming 2 partition(s) of fhir; EventStore not asked yet (no records)",
  });
  assert.equal(readiness({ ...view, store: { kind: "ok", at: T0 } }).ok, true);
  assert.match(readiness({ ...view, phase: "starting" }).reason, /^starting/);
  assert.equal(readiness({ ...view, phase: "stopping" }).ok, false);
  assert.match(readiness({ ...view, partitions: 0 }).reason, /no partition of fhir is assigned/);
  const failing = readiness({ ...view, store: { kind: "failing", since: T0, outcome: unavailable } });
  assert.deepEqual(failing, {
    ok: false,
    reason: "EventStore failing since 2026-01-01T00:00:00.000Z (answered 503)",
  });
  assert.ok(!failing.reason.includes("down"), "the answer's diagnostics stay out of the endpoint");
});

Deno.test("readiness: why the EventStore fails, in words an operator acts on", () => {
  assert.equal(
    storeProblem({ kind: "failing", since: T0, outcome: refused }),
    "EventStore refuses requests since 2026-01-01T00:00:00.000Z (answered 401): check --eventstore-url " +
      "and credentials",
  );
  assert.equal(
    storeProblem({
      kind: "failing",
      since: T0,
      outcome: { kind: "retry", reason: "EventStore did not answer within 30000 ms" },
    }),
    "EventStore unreachable since 2026-01-01T00:00:00.000Z: EventStore did not answer within 30000 ms",
  );
});

Deno.test("liveness: a consumer loop silent for too long is wedged", () => {
  assert.equal(liveness({ phase: "starting", lastActivity: undefined }, T0).ok, true);
  assert.equal(liveness({ phase: "consuming", lastActivity: T0 }, T0 + WEDGED_AFTER_MS).ok, true);
  const wedged = liveness({ phase: "consuming", lastActivity: T0 }, T0 + WEDGED_AFTER_MS + 1000);
  assert.deepEqual(wedged, {
    ok: false,
    reason: "the Kafka consumer loop has shown no sign of life for 121 s",
  });
  assert.equal(liveness({ phase: "stopping", lastActivity: T0 }, T0 + 10 * WEDGED_AFTER_MS).ok, true);
});

Deno.test("progress: lag from the first unaccounted record, else the commit, to the newest log end", () => {
  const status = { partition: 0, committed: 10, next: 12, highWatermark: 20, inFlight: 3 };
  assert.deepEqual(partitionProgress(status, undefined), {
    partition: 0,
    committed: 10,
    logEnd: 20,
    lag: 8,
    inFlight: 3,
  });
  assert.equal(partitionProgress(status, 30).lag, 18, "a poll newer than the batch (partition paused)");
  assert.equal(partitionProgress({ ...status, next: undefined }, 15).lag, 10, "nothing taken: the commit");
  assert.equal(partitionProgress({ ...status, next: undefined, committed: undefined }, 15).lag, undefined);
  assert.equal(partitionProgress({ ...status, highWatermark: undefined }, undefined).lag, undefined);
});

Deno.test("progress: the STATUS= line", () => {
  const counts = {
    consumed: 9,
    delivered: 5,
    deadLettered: 1,
    skipped: 2,
    unfinished: 1,
    deleted: 0,
    retries: 4,
  };
  const status = (phase: SinkStatus["phase"]): SinkStatus => ({ phase, counts, partitions: [] });
  const partitions = [
    { partition: 0, committed: 1, logEnd: 5, lag: 4, inFlight: 1 },
    { partition: 1, committed: 3, logEnd: 3, lag: 0, inFlight: 0 },
  ];
  const ready = { ok: true, reason: "consuming" };
  const line = (phase: SinkStatus["phase"], r = ready) =>
    statusLine({ topic: "fhir", status: status(phase), partitions, ready: r });
  assert.equal(line("starting"), "Starting: connecting to Kafka and joining the consumer group");
  assert.equal(
    line("consuming"),
    "Consuming fhir (2 partitions): 5 delivered, 1 dead-lettered, 2 skipped; lag 4",
  );
  assert.equal(
    line("consuming", { ok: false, reason: "EventStore failing" }),
    "Consuming fhir (2 partitions): 5 delivered, 1 dead-lettered, 2 skipped; lag 4; not ready: EventStore failing",
  );
  assert.equal(
    line("stopping"),
    "Stopping: finishing deliveries in flight; 5 delivered, 1 dead-lettered, 2 skipped",
  );
  assert.equal(
    statusLine({
      topic: "fhir",
      status: { ...status("consuming"), counts: { ...counts, deleted: 7 } },
      partitions,
      ready,
    }),
    "Consuming fhir (2 partitions): 5 delivered, 1 dead-lettered, 2 skipped, 7 deleted before delivery; lag 4",
    "records Kafka deleted unread are named",
  );
});
