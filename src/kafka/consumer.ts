import type { EachBatchPayload, Kafka } from "kafkajs";
import type { HeaderValue, SourceRecord } from "../record.ts";
import { foreignMemberProblem, isForeignAssignorError } from "./group_protocol.ts";

/** How long the group waits for a member that stopped heartbeating (see README, "Delivery guarantee"). */
export const SESSION_TIMEOUT_MS = 10_000;

/** The group member's KafkaJS settings (the bench's consume-only ceiling reads with them too). */
export const CONSUMER_SETTINGS = {
  // A member that died (kill -9, a lost VM) holds its partitions this long; KafkaJS's 30 s doubled the
  // records a restart delivered again. The sink's event loop never blocks for seconds, so 10 s is safe.
  sessionTimeout: SESSION_TIMEOUT_MS,
  heartbeatInterval: 3_000,
  // With every busy partition paused, KafkaJS sleeps this long between heartbeats and fetches.
  maxWaitTimeInMs: 100,
  // The sink holds two batches per partition; KafkaJS's 1 MB each made fetched-but-unsent records
  // the largest thing in memory during replays. 256 KB is still ~150 fixture-sized records a batch, and
  // the broker returns a larger record whole all the same (one batch always comes back).
  maxBytesPerPartition: 256 * 1024,
  allowAutoTopicCreation: false,
};

/** A fetched batch of one partition, handed to the sink with what it needs to settle it later. */
export interface Batch {
  topic: string;
  partition: number;
  records: SourceRecord[];
  /** The partition's log-end offset when the batch was fetched: the next offset a producer writes. */
  highWatermark: number;
  /** Marks records up to `offset` as consumed, so the next fetch starts after it. */
  resolve(offset: number): void;
  /** Commits `offset` (the next one to read) for this partition in the group. */
  commit(offset: number): Promise<void>;
  /** Stops fetching this partition; the returned function resumes it. */
  pause(): () => void;
}

/** What the sink hears from the consumer. */
export interface ConsumerEvents {
  onBatch(batch: Batch): void;
  /** After every (re)join: the partitions this process now owns. */
  onAssigned(topic: string, partitions: number[]): void;
  /** The consumer crashed; `restart` says whether KafkaJS rejoins by itself. */
  onCrash(error: Error, restart: boolean): void;
  /** KafkaJS found the fetch offset deleted and moves the partition to its earliest record. */
  onOffsetOutOfRange(topic: string, partition: number): void;
}

/** The group member that fetches the topic. */
export interface Consumer {
  /** Checks the brokers and topics, connects, joins the group and starts fetching; rejects when it cannot. */
  start(events: ConsumerEvents): Promise<void>;
  /** Stops fetching every partition (the first step of a clean stop). */
  pauseAll(): void;
  /** Leaves the group and disconnects the consumer. */
  stop(): Promise<void>;
  /** When the consumer last fetched, heartbeated, (re)joined or crashed (ms since the epoch): liveness. */
  lastActivity(): number | undefined;
}

/**
 * Builds the group's consumer of `topic`. `hooks.prepare` runs first on every start: it hears the events (the
 * offset-out-of-range signal comes through KafkaJS's log) and checks the brokers and topics. `fromBeginning`
 * is always true: a new group starts at the earliest record as the original did, and when retention deleted
 * records the group had not read yet, KafkaJS moves it to the earliest record left rather than silently to
 * the end.
 */
export function createConsumer(
  kafka: Kafka,
  options: { group: string; topic: string },
  hooks: { prepare: (events: ConsumerEvents) => Promise<void>; onAnswer: () => void },
): Consumer {
  const consumer = kafka.consumer({ groupId: options.group, ...CONSUMER_SETTINGS });
  let lastActivity: number | undefined;
  let crashed = false;
  let running = false;
  consumer.on(consumer.events.CRASH, ({ payload }) => (crashed ||= !payload.restart));
  const touch = () => (lastActivity = Date.now());
  // KafkaJS fetches every maxWaitTimeInMs even with every partition paused, so silence means a stuck loop.
  const { FETCH_START, HEARTBEAT, GROUP_JOIN, CONNECT, CRASH } = consumer.events;
  for (const event of [FETCH_START, HEARTBEAT, GROUP_JOIN, CONNECT, CRASH]) consumer.on(event, touch);
  const { FETCH, COMMIT_OFFSETS } = consumer.events;
  for (const event of [FETCH, HEARTBEAT, GROUP_JOIN, COMMIT_OFFSETS]) consumer.on(event, hooks.onAnswer);

  return {
    async start(events) {
      await hooks.prepare(events);
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        events.onAssigned(options.topic, payload.memberAssignment[options.topic] ?? []);
      });
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        const error = isForeignAssignorError(payload.error)
          ? new Error(foreignMemberProblem(options.group))
          : payload.error;
        events.onCrash(error, payload.restart);
      });
      await consumer.connect();
      await consumer.subscribe({ topic: options.topic, fromBeginning: true });
      running = true;
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        // The sink takes each batch over and returns at once; this only bounds batches handed over per fetch.
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => {
          events.onBatch(toBatch(payload));
          return Promise.resolve();
        },
      });
    },
    pauseAll() {
      // A consumer that crashed, or that has not run yet (stopped while checking the brokers), fetches
      // nothing, and KafkaJS refuses to pause it.
      if (!crashed && running) consumer.pause([{ topic: options.topic }]);
    },
    stop: () => consumer.disconnect(),
    lastActivity: () => lastActivity,
  };
}

function toBatch(payload: EachBatchPayload): Batch {
  const { topic, partition } = payload.batch;
  const commit = payload.commitOffsetsIfNecessary;
  return {
    topic,
    partition,
    highWatermark: Number(payload.batch.highWatermark),
    records: payload.batch.messages.map((message) => ({
      topic,
      partition,
      offset: Number(message.offset),
      key: message.key,
      value: message.value,
      headers: (message.headers ?? {}) as Record<string, HeaderValue>,
      timestamp: message.timestamp,
    })),
    resolve: (offset) => payload.resolveOffset(String(offset)),
    commit: (offset) => commit({ topics: [{ topic, partitions: [{ partition, offset: String(offset) }] }] }),
    pause: () => payload.pause(),
  };
}
