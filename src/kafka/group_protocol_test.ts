import assert from "node:assert/strict";
import {
  EVENTSINK_ASSIGNOR,
  foreignMemberProblem,
  groupAssignorProblem,
  isForeignAssignorError,
} from "./group_protocol.ts";

Deno.test("group assignor: a group held by another kind of consumer is named, an empty or own one is not", () => {
  const cases: [{ members: number; protocol: string }, boolean][] = [
    [{ members: 1, protocol: "range" }, true],
    [{ members: 2, protocol: "cooperative-sticky" }, true],
    [{ members: 1, protocol: EVENTSINK_ASSIGNOR }, false],
    [{ members: 0, protocol: "" }, false],
    // A group whose last member left keeps no protocol worth judging.
    [{ members: 0, protocol: "range" }, false],
  ];
  for (const [described, foreign] of cases) {
    assert.equal(groupAssignorProblem("g", described) !== null, foreign, JSON.stringify(described));
  }
  assert.equal(
    groupAssignorProblem("g", { members: 1, protocol: "range" }),
    foreignMemberProblem("g", "range"),
  );
});

Deno.test("group assignor: the text names the group, the assignor when known, and what to do", () => {
  assert.match(
    foreignMemberProblem("hops-eventsink-group", "range"),
    /^consumer group hops-eventsink-group has a member .* \(range\);/,
  );
  assert.doesNotMatch(foreignMemberProblem("g"), /\(\w+\);/);
  assert.match(
    foreignMemberProblem("g"),
    /hops-EventSinkKafka still running\? Stop it, then start eventsink$/,
  );
});

Deno.test("group assignor: KafkaJS's INCONSISTENT_GROUP_PROTOCOL is recognised, nothing else", () => {
  assert.equal(
    isForeignAssignorError(Object.assign(new Error("x"), { type: "INCONSISTENT_GROUP_PROTOCOL" })),
    true,
  );
  for (
    const other of [
      new Error("x"),
      Object.assign(new Error("x"), { type: "REBALANCE_IN_PROGRESS" }),
      null,
      "text",
    ]
  ) {
    assert.equal(isForeignAssignorError(other), false);
  }
});
