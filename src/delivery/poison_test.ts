import assert from "node:assert/strict";
import type { Outcome } from "./outcome.ts";
import {
  conflictsWithStored,
  createStoreEvidence,
  isPoisonFailure,
  pastPoisonBound,
  PROBE_GAP_MS,
} from "./poison.ts";

const DELIVERED: Outcome = { kind: "delivered", status: 200 };
const DOWN: Outcome = { kind: "retry", status: 503, reason: "EventStore answered 503" };

Deno.test("poison: only 5xx (but a database that cannot write), timeouts and connection errors count, past both bounds", () => {
  const failures: [Outcome, boolean][] = [
    [{ kind: "retry", status: 500, reason: "" }, true],
    [{ kind: "retry", status: 503, reason: "" }, true],
    [{ kind: "retry", reason: "no answer within 30000 ms" }, true],
    [{ kind: "retry", status: 429, reason: "" }, false],
    [{ kind: "retry", status: 408, reason: "" }, false],
    [{ kind: "config-fault", status: 401, reason: "" }, false],
    [{ kind: "rejected", status: 422, reason: "" }, false],
    // The database cannot write: the store's failure, not the record's.
    [{
      kind: "retry",
      status: 500,
      reason:
        "EventStore answered 500: org.postgresql.util.PSQLException: ERROR: cannot execute INSERT in a …",
      diagnostics:
        "org.postgresql.util.PSQLException: ERROR: cannot execute INSERT in a read-only transaction",
    }, false],
    [{ kind: "retry", status: 500, reason: 'PSQLException: ERROR: could not extend file "base/…"' }, false],
    [{ kind: "retry", status: 500, reason: "duplicate key value violates unique constraint" }, true],
  ];
  for (const [outcome, counts] of failures) {
    assert.equal(isPoisonFailure(outcome), counts, JSON.stringify(outcome));
  }
  const policy = { attempts: 10, afterMs: 300_000 };
  assert.equal(pastPoisonBound(policy, 10, 300_000), true);
  assert.equal(pastPoisonBound(policy, 9, 900_000), false, "too few attempts");
  assert.equal(pastPoisonBound(policy, 500, 299_999), false, "too soon");
  assert.equal(pastPoisonBound(undefined, 1_000_000, 1e12), false, "off");
});

Deno.test("poison: a 500 naming a broken unique constraint says the store works; nothing else does", () => {
  const constraint =
    "org.postgresql.util.PSQLException: ERROR: duplicate key value violates unique constraint " +
    '"event_bundle_id_key"';
  assert.equal(
    conflictsWithStored({ kind: "retry", status: 500, reason: "…", diagnostics: constraint }),
    true,
  );
  assert.equal(
    conflictsWithStored({ kind: "retry", status: 500, reason: `EventStore answered 500: ${constraint}` }),
    true,
  );
  assert.equal(conflictsWithStored({ kind: "retry", status: 500, reason: "EventStore answered 500" }), false);
  assert.equal(conflictsWithStored({ kind: "retry", reason: "no answer within 30000 ms" }), false);
  assert.equal(conflictsWithStored(DOWN), false);
});

/** Evidence on a fake clock with a probe that answers from a list. */
function evidence(probeAnswers: Outcome[]) {
  let clock = 1_000;
  let probes = 0;
  const store = createStoreEvidence(() => {
    probes++;
    return Promise.resolve(probeAnswers.shift() ?? DOWN);
  }, () => clock);
  return { store, tick: (ms: number) => (clock += ms), now: () => clock, probes: () => probes };
}

Deno.test("poison evidence: a message stored after the first failure needs no probe", async () => {
  const e = evidence([]);
  const since = e.now();
  e.tick(10);
  e.store.stored();
  assert.equal(await e.store.worksSince(since), true);
  assert.equal(await e.store.worksSince(e.now() + 1), false, "not after a later first failure, which probes");
  assert.equal(e.probes(), 1);
  assert.equal(e.store.storedSince(since), true);
  assert.equal(e.store.storedSince(e.now()), false, "storedSince never probes");
  assert.equal(e.probes(), 1);
});

Deno.test("poison evidence: without answers a probe decides, at most once per interval, shared", async () => {
  const e = evidence([DOWN, DELIVERED]);
  const since = e.now();
  e.tick(1);
  assert.deepEqual(await Promise.all([e.store.worksSince(since), e.store.worksSince(since)]), [false, false]);
  assert.equal(e.probes(), 1, "one probe for both");
  e.tick(PROBE_GAP_MS - 2);
  assert.equal(await e.store.worksSince(since), false, "the failed probe stands within the interval");
  assert.equal(e.probes(), 1);
  e.tick(2);
  assert.equal(await e.store.worksSince(since), true, "a new probe succeeded");
  assert.equal(e.probes(), 2);
  assert.equal(await e.store.worksSince(e.now() + 5), false, "it ran before a later failure began");
});

Deno.test("poison evidence: probe() gives the last outcome within the interval", async () => {
  const e = evidence([DELIVERED, DOWN]);
  assert.deepEqual(await e.store.probe(), DELIVERED);
  e.tick(PROBE_GAP_MS - 1);
  assert.deepEqual(await e.store.probe(), DELIVERED);
  e.tick(1);
  assert.deepEqual(await e.store.probe(), DOWN);
  assert.equal(e.probes(), 2);
});

Deno.test("poison evidence: while other records fail too and none is stored, the probe is not asked", async () => {
  const e = evidence([DELIVERED, DELIVERED]);
  const since = e.now();
  const first = e.store.failing();
  const second = e.store.failing();
  e.tick(1);
  assert.equal(await e.store.worksSince(since), false, "a store that cannot write serves its search");
  assert.equal(e.probes(), 0);
  second();
  second();
  assert.equal(await e.store.worksSince(since), true, "failing alone, the probe decides");
  assert.equal(e.probes(), 1);
  first();
});
