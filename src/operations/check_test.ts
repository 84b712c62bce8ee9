/** `eventsink check`'s verdicts and report, from answers given by hand. */
import assert from "node:assert/strict";
import { classifyStatus } from "../delivery/outcome.ts";
import { type CheckDeps, type CheckOptions, formatReport, runChecks, verdict } from "./check.ts";
import { parseCommand } from "../config/parse.ts";
import type { KafkaInspector } from "../kafka/admin.ts";

function config(args: string[] = []): CheckOptions {
  const parsed = parseCommand(
    [
      "--eventstore-url",
      "http://es.test",
      "--brokers",
      "k1:9092",
      "--topic",
      "fhir",
      "--group",
      "g",
      ...args,
    ],
    () => undefined,
  );
  assert.equal(parsed.kind, "run");
  return (parsed as { config: CheckOptions }).config;
}

const healthyKafka: KafkaInspector = {
  cluster: () => Promise.resolve({ clusterId: "c1", brokers: ["k1:9092"] }),
  topic: (name) =>
    Promise.resolve(
      name === "fhir"
        ? [
          { partition: 0, leader: 1, earliest: 0, end: 10 },
          { partition: 1, leader: 1, earliest: 5, end: 8 },
        ]
        : name === "dlq"
        ? [{ partition: 0, leader: 1, earliest: 0, end: 0 }]
        : undefined,
    ),
  group: () =>
    Promise.resolve({
      state: "Stable",
      members: 1,
      protocol: "RoundRobinAssigner",
      committed: new Map([[0, 7]]),
    }),
};
const storeOk = () => Promise.resolve({ kind: "delivered", status: 200 } as const);

function deps(overrides: Partial<CheckDeps> = {}): CheckDeps {
  return { kafka: healthyKafka, probeStore: storeOk, ...overrides };
}

Deno.test("check: all parts pass, with partitions and lag listed", async () => {
  const results = await runChecks(config(["--dead-letter-topic", "dlq"]), deps());
  assert.deepEqual(results.map((r) => [r.part, r.result]), [
    ["Kafka", "ok"],
    ["topic", "ok"],
    ["dead-letter topic", "ok"],
    ["consumer group", "ok"],
    ["EventStore", "ok"],
  ]);
  assert.equal(
    formatReport(results),
    [
      "OK      Kafka              cluster c1 answered; brokers k1:9092",
      "OK      topic              fhir: 2 partition(s): 0 (offsets 0–10, leader 1), 1 (offsets 5–8, leader 1)",
      "OK      dead-letter topic  dlq: 1 partition(s): 0 (offsets 0–0, leader 1)",
      // Partition 1 has no committed offset: its lag counts from the earliest record kept.
      "OK      consumer group     g: Stable, 1 member; lag 6 (0: 3, 1: 3)",
      "OK      EventStore         GET http://es.test/fhir/4.0/Bundle?_count=1 answered 200",
      "All 5 checks passed.",
    ].join("\n"),
  );
});

Deno.test("check: a new group is reported as such", async () => {
  const kafka = {
    ...healthyKafka,
    group: () => Promise.resolve({ state: "Dead", members: 0, protocol: "", committed: new Map() }),
  };
  const [, , group] = await runChecks(config(), deps({ kafka }));
  assert.equal(
    group!.detail,
    "g: not created yet (no member has joined); lag 13 (0: 10, 1: 3); no committed offsets yet: a first " +
      "start reads each partition from its earliest record",
  );
  const empty = {
    ...healthyKafka,
    group: () => Promise.resolve({ state: "Empty", members: 0, protocol: "", committed: new Map([[0, 4]]) }),
  };
  const [, , left] = await runChecks(config(), deps({ kafka: empty }));
  assert.equal(left!.detail, "g: Empty, 0 members; lag 9 (0: 6, 1: 3)", "a group whose members all left");
});

Deno.test("check: records deleted past the group's committed offset are named, and not counted as lag", async () => {
  const behind = {
    ...healthyKafka,
    // Partition 1 keeps offsets 5–7; the group committed 2 there: 2–4 were deleted before it read them.
    group: () =>
      Promise.resolve({ state: "Empty", members: 0, protocol: "", committed: new Map([[0, 4], [1, 2]]) }),
  };
  const [, , group] = await runChecks(config(), deps({ kafka: behind }));
  assert.equal(group!.result, "ok", "nothing a start could change");
  assert.equal(
    group!.detail,
    "g: Empty, 0 members; lag 9 (0: 6, 1: 3); records deleted (retention) before this group read them, lost " +
      "to it: 1: 2–4",
  );
});

Deno.test("check: Kafka down: its parts are not checked, the EventStore still is", async () => {
  const kafka = { ...healthyKafka, cluster: () => Promise.reject(new Error("Connection refused")) };
  const results = await runChecks(config(), deps({ kafka }));
  assert.deepEqual(results.map((r) => [r.part, r.result, r.detail]), [
    ["Kafka", "fail", "k1:9092 did not answer: Connection refused"],
    ["topic", "skipped", "not checked: Kafka did not answer"],
    ["consumer group", "skipped", "not checked: Kafka did not answer"],
    ["EventStore", "ok", "GET http://es.test/fhir/4.0/Bundle?_count=1 answered 200"],
  ]);
  assert.match(
    formatReport(results),
    /\n1 of 4 checks failed, 2 skipped, 1 passed\.$/,
    "skipped is not failed",
  );
});

Deno.test("check: a missing topic, a failing group read", async () => {
  const kafka = { ...healthyKafka, group: () => Promise.reject(new Error("coordinator not available")) };
  const results = await runChecks(config(["--dead-letter-topic", "nope"]), deps({ kafka }));
  assert.deepEqual(results.slice(1, 4).map((r) => [r.result, r.detail]), [
    ["ok", "fhir: 2 partition(s): 0 (offsets 0–10, leader 1), 1 (offsets 5–8, leader 1)"],
    ["fail", "nope does not exist"],
    ["fail", "g: coordinator not available"],
  ]);
  const missing = await runChecks(
    config(),
    deps({ kafka: { ...healthyKafka, topic: () => Promise.resolve(undefined) } }),
  );
  assert.deepEqual(missing.slice(1, 3).map((r) => [r.result, r.detail]), [
    ["fail", "fhir does not exist"],
    ["skipped", "not checked: topic fhir not found"],
  ]);
});

Deno.test("check: the verdict counts failed, skipped and passed parts apart", () => {
  const part = (result: "ok" | "fail" | "skipped") => ({ part: "p", result, detail: "" });
  assert.equal(verdict([part("ok"), part("ok")]), "All 2 checks passed.");
  assert.equal(verdict([part("ok"), part("fail"), part("ok")]), "1 of 3 checks failed, 2 passed.");
  assert.equal(
    verdict([part("fail"), part("skipped"), part("skipped"), part("fail")]),
    "2 of 4 checks failed, 2 skipped, 0 passed.",
  );
});

Deno.test("check: the EventStore's answers, each with what to do", async () => {
  const cases = [
    // A configuration fault's reason names what to check itself (delivery/outcome.ts); check adds nothing.
    [
      classifyStatus(401, { logged: "a bearer token is required", full: "a bearer token is required" }),
      /answered 401: a bearer token is required \(check the EventStore credentials\)$/,
    ],
    [
      classifyStatus(404),
      /answered 404 \(check --eventstore-url: the base URL, without \/fhir\/4\.0\)$/,
    ],
    [
      { kind: "retry", status: 503, reason: "EventStore answered 503" },
      /answered 503: the EventStore is unreachable or unwell$/,
    ],
    [
      { kind: "retry", reason: "Cannot reach the EventStore: connection refused" },
      /: Cannot reach the EventStore: connection refused: the EventStore is unreachable or unwell$/,
    ],
  ] as const;
  for (const [outcome, expected] of cases) {
    const results = await runChecks(config(), deps({ probeStore: () => Promise.resolve(outcome) }));
    const store = results.at(-1)!;
    assert.equal(store.result, "fail");
    assert.match(store.detail, expected);
    assert.ok(store.detail.startsWith("GET http://es.test/fhir/4.0/Bundle?_count=1: "));
  }
});
