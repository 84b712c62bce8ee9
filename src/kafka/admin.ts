import type { Admin } from "kafkajs";
import type { PartitionRange } from "../replay/start_position.ts";

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

/** Wraps a KafkaJS admin client; `connect` is the start-up check the consumer uses too. */
export function createOffsetAdmin(admin: Admin, connect: (admin: Admin) => Promise<void>): OffsetAdmin {
  return {
    connect: () => connect(admin),
    async ranges(topic) {
      const offsets = await admin.fetchTopicOffsets(topic);
      return offsets
        .map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }))
        .sort((a, b) => a.partition - b.partition);
    },
    async committed(group, topic) {
      const fetched = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      const partitions = fetched.find((entry) => entry.topic === topic)?.partitions ?? [];
      return new Map(
        partitions.map((p) => [p.partition, Number(p.offset)] as const).filter(([, offset]) => offset >= 0),
      );
    },
    async offsetsAt(topic, ms) {
      const offsets = await admin.fetchTopicOffsetsByTimestamp(topic, ms);
      return new Map(offsets.map((o) => [o.partition, Number(o.offset)]));
    },
    async setCommitted(group, topic, offsets) {
      await admin.setOffsets({
        groupId: group,
        topic,
        partitions: [...offsets].map(([partition, offset]) => ({ partition, offset: String(offset) })),
      });
    },
    async deleteGroup(group) {
      await admin.deleteGroups([group]);
    },
    close: () => admin.disconnect(),
  };
}
