/**
 * What eventsink asks KafkaJS's admin client: committed offsets and watermarks (each read and converted
 * in one function here), a replay's group preparation, and `eventsink check`'s questions.
 */
import type { Admin, Kafka } from "kafkajs";

/** A partition's oldest record left (`low`) and the offset the next record will get (`high`). */
export interface PartitionRange {
  partition: number;
  low: number;
  high: number;
}

/** Where an assigned partition stands: the group's committed offset and the oldest offset still kept. */
export interface PartitionStart {
  partition: number;
  committed: number | undefined;
  earliest: number;
}

/** Reads committed and earliest offsets of the given partitions of the consumer's group. */
export type PartitionStarts = (topic: string, partitions: number[]) => Promise<PartitionStart[]>;

/** The group and offset look-ups and changes a replay needs, behind a narrow face of KafkaJS's admin. */
export interface OffsetAdmin {
  /** Connects; rejects naming the brokers when they do not answer, or a topic that does not exist. */
  connect(): Promise<void>;
  /** Each partition's earliest record left and its end (the offset the next record gets). */
  ranges(topic: string): Promise<PartitionRange[]>;
  /** The offsets `group` committed for the topic's partitions (partitions without one are left out). */
  committed(group: string, topic: string): Promise<Map<number, number>>;
  /** Per partition, the first offset whose record timestamp is at or after `ms` (the end when none is). */
  offsetsAt(topic: string, ms: number): Promise<Map<number, number>>;
  /** Commits `offsets` in `group`, which must have no members (a fresh group, before anyone joined). */
  setCommitted(group: string, topic: string, offsets: ReadonlyMap<number, number>): Promise<void>;
  /** Deletes `group` and its committed offsets; it must have no members. */
  deleteGroup(group: string): Promise<void>;
  close(): Promise<void>;
}

/** A partition of a topic as `eventsink check` reports it. */
export interface PartitionInfo {
  partition: number;
  leader: number;
  /** The oldest offset still kept. */
  earliest: number;
  /** The log-end offset. */
  end: number;
}

/** A consumer group's state and its committed offsets for one topic. */
export interface GroupInfo {
  /** Kafka's group state: Stable, Empty, PreparingRebalance, Dead (unknown group) … */
  state: string;
  members: number;
  /** The partition assignor its members agreed on, e.g. RoundRobinAssigner or range; "" without members. */
  protocol: string;
  /** Committed offset by partition; partitions without one are left out. */
  committed: Map<number, number>;
}

/** Read-only questions to the cluster; each rejects with the reason when it cannot be answered. */
export interface KafkaInspector {
  /** Connects; the cluster id and the brokers it names (`host:port`). */
  cluster(): Promise<{ clusterId: string; brokers: string[] }>;
  /** The topic's partitions, or undefined when there is no such topic. */
  topic(name: string): Promise<PartitionInfo[] | undefined>;
  group(groupId: string, topic: string): Promise<GroupInfo>;
}

/** The offsets `group` committed for the topic's partitions; KafkaJS's -1 (none) is left out. */
async function readCommitted(admin: Admin, group: string, topic: string): Promise<Map<number, number>> {
  const fetched = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  const partitions = fetched.find((entry) => entry.topic === topic)?.partitions ?? [];
  return new Map(
    partitions.map((p) => [p.partition, Number(p.offset)] as const).filter(([, offset]) => offset >= 0),
  );
}

/** Each partition's watermarks, in partition order. */
async function readRanges(admin: Admin, topic: string): Promise<PartitionRange[]> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets
    .map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }))
    .sort((a, b) => a.partition - b.partition);
}

/** Where each partition starts for `group`; a partition the broker names no watermarks for starts at 0. */
export function partitionStartsOf(admin: Admin, group: string): PartitionStarts {
  return async (topic, partitions) => {
    const [committed, ranges] = await Promise.all([
      readCommitted(admin, group, topic),
      readRanges(admin, topic),
    ]);
    return partitions.map((partition) => ({
      partition,
      committed: committed.get(partition),
      earliest: ranges.find((r) => r.partition === partition)?.low ?? 0,
    }));
  };
}

/** The log-end offset of each partition of `topic`: the next offset a producer writes. */
export async function logEndOffsets(admin: Admin, topic: string): Promise<Map<number, number>> {
  return new Map((await readRanges(admin, topic)).map((r) => [r.partition, r.high]));
}

/**
 * Commits `offsets` in a group without members the way KafkaJS's `admin.setOffsets` does — a consumer
 * joins, seeks, and leaves after its first fetch — but that consumer waits 5 s for a fetch of a paused
 * topic, which held every replay's first POST back by as much; this one waits 100 ms.
 */
async function commitInEmptyGroup(
  kafka: Kafka,
  group: string,
  topic: string,
  offsets: ReadonlyMap<number, number>,
): Promise<void> {
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer.on(consumer.events.FETCH, () => consumer.stop().then(resolve, reject));
      consumer.run({ eachBatchAutoResolve: false, eachBatch: () => Promise.resolve() }).catch(reject);
      consumer.pause([{ topic }]);
      for (const [partition, offset] of offsets) consumer.seek({ topic, partition, offset: String(offset) });
    });
  } finally {
    await consumer.disconnect();
  }
}

/** Wraps a KafkaJS admin client; `connect` is the start-up check the consumer uses too. */
export function createOffsetAdmin(
  kafka: Kafka,
  admin: Admin,
  connect: (admin: Admin) => Promise<void>,
): OffsetAdmin {
  return {
    connect: () => connect(admin),
    ranges: (topic) => readRanges(admin, topic),
    committed: (group, topic) => readCommitted(admin, group, topic),
    async offsetsAt(topic, ms) {
      const offsets = await admin.fetchTopicOffsetsByTimestamp(topic, ms);
      return new Map(offsets.map((o) => [o.partition, Number(o.offset)]));
    },
    setCommitted: (group, topic, offsets) => commitInEmptyGroup(kafka, group, topic, offsets),
    async deleteGroup(group) {
      await admin.deleteGroups([group]);
    },
    close: () => admin.disconnect(),
  };
}

/** `eventsink check`'s questions, through `admin`; `connect` is bounded in time (see client.ts). */
export function createInspector(admin: Admin, connect: (admin: Admin) => Promise<void>): KafkaInspector {
  return {
    async cluster() {
      await connect(admin);
      const cluster = await admin.describeCluster();
      return { clusterId: cluster.clusterId, brokers: cluster.brokers.map((b) => `${b.host}:${b.port}`) };
    },
    async topic(name) {
      if (!(await admin.listTopics()).includes(name)) return undefined;
      const [metadata, ranges] = await Promise.all([
        admin.fetchTopicMetadata({ topics: [name] }),
        readRanges(admin, name),
      ]);
      const partitions = metadata.topics[0]?.partitions ?? [];
      return partitions.map((p) => {
        const range = ranges.find((r) => r.partition === p.partitionId);
        return {
          partition: p.partitionId,
          leader: p.leader,
          earliest: range?.low ?? NaN,
          end: range?.high ?? NaN,
        };
      }).sort((a, b) => a.partition - b.partition);
    },
    async group(groupId, topic) {
      const [described, committed] = await Promise.all([
        admin.describeGroups([groupId]),
        readCommitted(admin, groupId, topic),
      ]);
      const group = described.groups[0];
      return {
        state: group?.state ?? "Dead",
        members: group?.members.length ?? 0,
        protocol: group?.protocol ?? "",
        committed,
      };
    },
  };
}
