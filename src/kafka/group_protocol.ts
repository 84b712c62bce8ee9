/**
 * Members of one consumer group must share a partition assignor. eventsink's KafkaJS consumer offers only
 * KafkaJS's round robin; Java consumers (the original hops-EventSinkKafka) offer `range` and
 * `cooperative-sticky`, so the broker refuses whichever kind joins a group the other holds.
 */

/** The one partition assignor eventsink's consumer offers: KafkaJS's default. */
export const EVENTSINK_ASSIGNOR = "RoundRobinAssigner";

/** Why eventsink cannot join `group`, whose members assign partitions with `assignor` when it is known. */
export function foreignMemberProblem(group: string, assignor?: string): string {
  const named = assignor === undefined ? "" : ` (${assignor})`;
  return `consumer group ${group} has a member that assigns partitions in a way eventsink's Kafka client ` +
    `does not speak${named}; eventsink offers only ${EVENTSINK_ASSIGNOR}, Java consumers offer range and ` +
    "cooperative-sticky. Is the original hops-EventSinkKafka still running? Stop it, then start eventsink";
}

/** The problem when `group` has members that eventsink cannot join, else null. */
export function groupAssignorProblem(
  group: string,
  described: { members: number; protocol: string },
): string | null {
  const foreign = described.members > 0 && described.protocol !== "" &&
    described.protocol !== EVENTSINK_ASSIGNOR;
  return foreign ? foreignMemberProblem(group, described.protocol) : null;
}

/** KafkaJS's error when the broker refused the join for that reason. */
export function isForeignAssignorError(error: unknown): boolean {
  return (error as { type?: unknown } | null)?.type === "INCONSISTENT_GROUP_PROTOCOL";
}
