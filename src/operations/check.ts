import type { GroupInfo, KafkaInspector, PartitionInfo } from "../kafka/admin.ts";
import { groupAssignorProblem } from "../kafka/group_protocol.ts";
import type { Outcome } from "../delivery/outcome.ts";
import { searchUrl } from "../delivery/request.ts";

/** One line of the `eventsink check` report. */
export interface CheckResult {
  part: string;
  /** "skipped": not checked, because a part it needs failed. */
  result: "ok" | "fail" | "skipped";
  detail: string;
}

/** The options the check reads: what eventsink would consume from, commit in and deliver to. */
export interface CheckOptions {
  brokers: string[];
  topic: string;
  /** Checked too when set (--dead-letter-topic). */
  rejected: { deadLetterTopic?: string | undefined };
  group: string;
  eventstoreUrl: string;
}

/** What the check asks: Kafka through the inspector, the EventStore through its search. */
export interface CheckDeps {
  kafka: KafkaInspector;
  probeStore: () => Promise<Outcome>;
}

/**
 * Checks both ends with the configuration eventsink runs with: the brokers answer, the topic (and the
 * dead-letter topic) exist, the consumer group's state and lag, and the EventStore takes a search.
 */
export async function runChecks(config: CheckOptions, deps: CheckDeps): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const topics = [
    { part: "topic", name: config.topic },
    ...(config.rejected.deadLetterTopic === undefined
      ? []
      : [{ part: "dead-letter topic", name: config.rejected.deadLetterTopic }]),
  ];
  let kafkaUp = true;
  try {
    const cluster = await deps.kafka.cluster();
    results.push({
      part: "Kafka",
      result: "ok",
      detail: `cluster ${cluster.clusterId} answered; brokers ${cluster.brokers.join(", ")}`,
    });
  } catch (error) {
    kafkaUp = false;
    results.push({
      part: "Kafka",
      result: "fail",
      detail: `${config.brokers.join(",")} did not answer: ${message(error)}`,
    });
  }
  let sourcePartitions: PartitionInfo[] | undefined;
  for (const [index, { part, name }] of topics.entries()) {
    if (!kafkaUp) {
      results.push({ part, result: "skipped", detail: "not checked: Kafka did not answer" });
      continue;
    }
    const found = await attempt(() => deps.kafka.topic(name));
    if (!found.ok) results.push({ part, result: "fail", detail: `${name}: ${found.error}` });
    else if (found.value === undefined) {
      results.push({ part, result: "fail", detail: `${name} does not exist` });
    } else {
      results.push({ part, result: "ok", detail: describeTopic(name, found.value) });
      if (index === 0) sourcePartitions = found.value;
    }
  }
  if (sourcePartitions === undefined) {
    results.push({
      part: "consumer group",
      result: "skipped",
      detail: kafkaUp ? `not checked: topic ${config.topic} not found` : "not checked: Kafka did not answer",
    });
  } else {
    const group = await attempt(() => deps.kafka.group(config.group, config.topic));
    const foreign = group.ok ? groupAssignorProblem(config.group, group.value) : null;
    results.push(
      !group.ok
        ? { part: "consumer group", result: "fail", detail: `${config.group}: ${group.error}` }
        : foreign !== null
        ? { part: "consumer group", result: "fail", detail: foreign }
        : {
          part: "consumer group",
          result: "ok",
          detail: describeGroup(config.group, group.value, sourcePartitions),
        },
    );
  }
  results.push(storeResult(config.eventstoreUrl, await deps.probeStore()));
  return results;
}

/** The report: one line per part, then the verdict. */
export function formatReport(results: readonly CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.part.length));
  const lines = results.map((r) =>
    `${r.result.toUpperCase().padEnd(7)} ${r.part.padEnd(width)}  ${r.detail}`
  );
  lines.push(verdict(results));
  return lines.join("\n");
}

/** "All 4 checks passed.", or how many failed, were skipped (for want of a part that failed) and passed. */
export function verdict(results: readonly CheckResult[]): string {
  const count = (result: CheckResult["result"]) => results.filter((r) => r.result === result).length;
  const [passed, failed, skipped] = [count("ok"), count("fail"), count("skipped")];
  if (passed === results.length) return `All ${results.length} checks passed.`;
  return `${failed} of ${results.length} checks failed` + (skipped > 0 ? `, ${skipped} skipped` : "") +
    `, ${passed} passed.`;
}

function describeTopic(name: string, partitions: PartitionInfo[]): string {
  const list = partitions.map((p) => `${p.partition} (offsets ${p.earliest}–${p.end}, leader ${p.leader})`);
  return `${name}: ${partitions.length} partition(s): ${list.join(", ")}`;
}

/**
 * Lag per partition: the records left from the committed offset, or from the earliest record kept when there
 * is none; and the records retention deleted past a committed offset, which no start will deliver.
 */
function describeGroup(name: string, group: GroupInfo, partitions: PartitionInfo[]): string {
  const lags = partitions.map((p) => ({
    partition: p.partition,
    lag: Math.max(0, p.end - Math.max(group.committed.get(p.partition) ?? p.earliest, p.earliest)),
  }));
  const total = lags.reduce((sum, l) => sum + l.lag, 0);
  const start = group.committed.size === 0
    ? "; no committed offsets yet: a first start reads each partition from its earliest record"
    : "";
  const deleted = partitions.flatMap((p) => {
    const committed = group.committed.get(p.partition);
    return committed !== undefined && committed < p.earliest
      ? [`${p.partition}: ${committed}–${p.earliest - 1}`]
      : [];
  });
  const lost = deleted.length === 0
    ? ""
    : `; records deleted (retention) before this group read them, lost to it: ${deleted.join(", ")}`;
  const perPartition = lags.map((l) => `${l.partition}: ${l.lag}`).join(", ");
  return `${name}: ${groupState(group)}; lag ${total} (${perPartition})${start}${lost}`;
}

/** The group's state and members; Kafka calls a group that does not exist (yet) Dead. */
function groupState(group: GroupInfo): string {
  if (group.state === "Dead" && group.members === 0 && group.committed.size === 0) {
    return "not created yet (no member has joined)";
  }
  return `${group.state}, ${group.members} member${group.members === 1 ? "" : "s"}`;
}

function storeResult(eventstoreUrl: string, outcome: Outcome): CheckResult {
  const asked = `GET ${searchUrl(eventstoreUrl, 1)}`;
  const part = "EventStore";
  if (outcome.kind === "delivered") {
    return { part, result: "ok", detail: `${asked} answered ${outcome.status}` };
  }
  // A configuration fault's reason already says what to check (delivery/outcome.ts).
  const hint = outcome.kind === "retry" ? ": the EventStore is unreachable or unwell" : "";
  return { part, result: "fail", detail: `${asked}: ${outcome.reason}${hint}` };
}

type Attempted<T> = { ok: true; value: T } | { ok: false; error: string };

async function attempt<T>(ask: () => Promise<T>): Promise<Attempted<T>> {
  try {
    return { ok: true, value: await ask() };
  } catch (error) {
    return { ok: false, error: message(error) };
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * `eventsink check`: both ends, one report; `passed` when every part passed. The EventStore is probed
 * as deliveries reach it (see connectEventStore).
 */
export async function checkEnds(
  options: CheckOptions,
  ends: { kafka: KafkaInspector; search: (count: 1) => Promise<Outcome> },
): Promise<{ report: string; passed: boolean }> {
  const results = await runChecks(options, { kafka: ends.kafka, probeStore: () => ends.search(1) });
  return { report: formatReport(results), passed: results.every((r) => r.result === "ok") };
}
