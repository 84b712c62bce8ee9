import { Buffer } from "node:buffer";
import process from "node:process";
import {
  type Admin,
  CompressionCodecs,
  CompressionTypes,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  Kafka,
  type LogEntry,
  logLevel,
  Partitioners,
  type Producer,
  type SASLOptions,
} from "kafkajs";
import type { ConnectionOptions } from "node:tls";
import { lz4Codec, snappyCodec, zstdCodec } from "./codecs.ts";
import type { Credentials } from "../security/credentials.ts";
import { createOffsetAdmin, type OffsetAdmin } from "./admin.ts";
import type { LogFields, Logger, LogLevel } from "../log.ts";
import type { HeaderValue, OutgoingRecord, SourceRecord } from "../record.ts";
import { errorChainText, explainTlsFailure } from "../security/tls_errors.ts";

/** A fetched batch of one partition, handed to the sink with what it needs to settle it later. */
export interface Handoff {
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

/** Where each assigned partition stands: the group's committed offset and the oldest offset still kept. */
export interface PartitionStart {
  partition: number;
  committed: number | undefined;
  earliest: number;
}

/** What the sink hears from the consumer. */
export interface SourceEvents {
  onBatch(handoff: Handoff): void;
  /** After every (re)join: the partitions this process now owns. */
  onAssigned(topic: string, partitions: number[]): void;
  /** The consumer crashed; `restart` says whether KafkaJS rejoins by itself. */
  onCrash(error: Error, restart: boolean): void;
  /** KafkaJS found the fetch offset deleted and moves the partition to its earliest record. */
  onOffsetOutOfRange(topic: string, partition: number): void;
}

/** The narrow face of KafkaJS that eventsink uses: consume the topic, write dead letters. */
export interface KafkaClient {
  /** Connects, joins the group and starts fetching; rejects when the brokers cannot be reached. */
  start(events: SourceEvents): Promise<void>;
  /** Stops fetching every partition (the first step of a clean stop). */
  pauseAll(): void;
  /** Reads committed and earliest offsets of the given partitions. */
  partitionStarts(topic: string, partitions: number[]): Promise<PartitionStart[]>;
  /** Writes one record and resolves once every in-sync replica has it (acks=all, idempotent producer). */
  publish(topic: string, record: OutgoingRecord): Promise<void>;
  /** Leaves the group and closes connections. */
  stop(): Promise<void>;
  /** The log-end offset of each partition of `topic`: the next offset a producer writes. */
  logEndOffsets(topic: string): Promise<Map<number, number>>;
  /** When the consumer last fetched, heartbeated, (re)joined or crashed (ms since the epoch): liveness. */
  lastActivity(): number | undefined;
  /** Reads the cluster, topics and groups, for `eventsink check`. */
  inspect: KafkaInspector;
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

/** Connection and group settings for the source. */
export interface SourceOptions {
  brokers: string[];
  clientId: string;
  group: string;
  topic: string;
  /** Checked to exist at start-up when given. */
  deadLetterTopic: string | undefined;
  logLevel: LogLevel;
  /** TLS material (undefined: plaintext), checked at start-up. */
  tls: Credentials["kafkaTls"];
  sasl: Credentials["kafkaSasl"];
}

/**
 * Builds a KafkaJS consumer for the topic. `fromBeginning` is always true: a new group starts at the
 * earliest record as the original did, and when retention deleted records the group had not read yet,
 * KafkaJS moves it to the earliest record left rather than silently to the end.
 */
export function createKafkaClient(
  options: SourceOptions,
  log: Logger,
): KafkaClient & { offsetAdmin(): OffsetAdmin } {
  let events: SourceEvents | undefined;
  let recentErrors: string[] = [];
  // KafkaJS sets negative timeouts (requestQueue), and the Node layer would print a warning as a raw line
  // among our log lines (breaking JSON logs): route such warnings through our logger instead.
  process.removeAllListeners("warning");
  process.on("warning", (warning) => log.debug(`Runtime warning: ${warning.name}: ${warning.message}`));
  CompressionCodecs[CompressionTypes.Snappy] = snappyCodec;
  CompressionCodecs[CompressionTypes.LZ4] = lz4Codec;
  CompressionCodecs[CompressionTypes.ZSTD] = zstdCodec;
  const client = (retries: number) =>
    new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      // KafkaJS's debug level logs every request; even our debug level only wants its info.
      logLevel: options.logLevel === "debug" ? logLevel.INFO : logLevel.WARN,
      logCreator: () => (entry) => {
        if (entry.level === logLevel.ERROR) recentErrors = [...recentErrors.slice(-9), entry.log.message];
        routeKafkaLog(entry, log, events);
      },
      retry: { initialRetryTime: 300, retries, maxRetryTime: 30_000 },
      ssl: tlsOptions(options.tls),
      sasl: saslOptions(options.sasl),
    });
  // The consumer retries broker requests for a while; after that it restarts itself (see onCrash).
  const kafka = client(8);
  // Retrying little to connect: at start-up an unreachable broker or a missing topic is reported in
  // seconds, and a dead letter that cannot be written is logged (and retried by us) just as soon.
  const quick = client(2);
  const admin: Admin = quick.admin();
  const consumer: Consumer = kafka.consumer({
    groupId: options.group,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    // With every busy partition paused, KafkaJS sleeps this long between heartbeats and fetches.
    maxWaitTimeInMs: 100,
    // A lane holds two batches per partition (sink.ts); KafkaJS's 1 MB each made fetched-but-unsent records
    // the largest thing in memory during replays. 256 KB is still ~150 fixture-sized records a batch, and
    // the broker returns a larger record whole all the same (one batch always comes back).
    maxBytesPerPartition: 256 * 1024,
    allowAutoTopicCreation: false,
  });
  // Made on the first dead letter only. Idempotent with acks=all: a dead letter KafkaJS retries is written
  // once, and only acknowledged when safe.
  let producer: Producer | undefined;
  let producerConnected: Promise<void> | undefined;
  let lastActivity: number | undefined;
  const touch = () => (lastActivity = Date.now());
  // KafkaJS fetches every maxWaitTimeInMs even with every partition paused, so silence means a stuck loop.
  const { FETCH_START, HEARTBEAT, GROUP_JOIN, CONNECT, CRASH } = consumer.events;
  for (const event of [FETCH_START, HEARTBEAT, GROUP_JOIN, CONNECT, CRASH]) consumer.on(event, touch);

  return {
    async start(handlers) {
      events = handlers;
      await preflight(admin, options, () => recentErrors);
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        handlers.onAssigned(options.topic, payload.memberAssignment[options.topic] ?? []);
      });
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        handlers.onCrash(payload.error, payload.restart);
      });
      await consumer.connect();
      await consumer.subscribe({ topic: options.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        // The sink takes each batch over and returns at once; this only bounds batches handed over per fetch.
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => {
          handlers.onBatch(toHandoff(payload));
          return Promise.resolve();
        },
      });
    },
    pauseAll() {
      consumer.pause([{ topic: options.topic }]);
    },
    async partitionStarts(topic, partitions) {
      const [committed, watermarks] = await Promise.all([
        admin.fetchOffsets({ groupId: options.group, topics: [topic] }),
        admin.fetchTopicOffsets(topic),
      ]);
      const committedByPartition = new Map(
        (committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]),
      );
      return partitions.map((partition) => {
        const offset = committedByPartition.get(partition);
        const low = watermarks.find((w) => w.partition === partition)?.low ?? "0";
        return {
          partition,
          committed: offset !== undefined && offset >= 0 ? offset : undefined,
          earliest: Number(low),
        };
      });
    },
    async publish(topic, record) {
      const writer = producer ??= quick.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        // Once connected, a send is retried by KafkaJS until the broker takes it, so that its idempotence
        // writes the dead letter exactly once; writeDeadLetter stops waiting when eventsink stops.
        retry: { retries: Number.MAX_SAFE_INTEGER },
      });
      // A failed connect is forgotten, so that the next attempt connects afresh.
      producerConnected ??= writer.connect().catch((error) => {
        producerConnected = undefined;
        throw error;
      });
      await producerConnected;
      await writer.send({
        topic,
        acks: -1,
        messages: [{
          key: asBuffer(record.key),
          value: asBuffer(record.value),
          headers: asHeaders(record.headers),
        }],
      });
    },
    // An admin client of its own, so that a replay can prepare its group before the consumer joins and
    // remove it after the consumer left.
    offsetAdmin: () =>
      createOffsetAdmin(
        client(2).admin(),
        (replayAdmin) => preflight(replayAdmin, options, () => recentErrors),
      ),
    async stop() {
      await consumer.disconnect();
      if (producerConnected) await producer?.disconnect();
      await admin.disconnect();
    },
    async logEndOffsets(topic) {
      const offsets = await admin.fetchTopicOffsets(topic);
      return new Map(offsets.map((o) => [o.partition, Number(o.high)]));
    },
    lastActivity: () => lastActivity,
    inspect: {
      async cluster() {
        await admin.connect();
        const cluster = await admin.describeCluster();
        return { clusterId: cluster.clusterId, brokers: cluster.brokers.map((b) => `${b.host}:${b.port}`) };
      },
      async topic(name) {
        if (!(await admin.listTopics()).includes(name)) return undefined;
        const [metadata, offsets] = await Promise.all([
          admin.fetchTopicMetadata({ topics: [name] }),
          admin.fetchTopicOffsets(name),
        ]);
        const partitions = metadata.topics[0]?.partitions ?? [];
        return partitions.map((p) => {
          const o = offsets.find((offset) => offset.partition === p.partitionId);
          return {
            partition: p.partitionId,
            leader: p.leader,
            earliest: Number(o?.low),
            end: Number(o?.high),
          };
        }).sort((a, b) => a.partition - b.partition);
      },
      async group(groupId, topic) {
        const [described, offsets] = await Promise.all([
          admin.describeGroups([groupId]),
          admin.fetchOffsets({ groupId, topics: [topic] }),
        ]);
        const group = described.groups[0];
        const committed = (offsets[0]?.partitions ?? [])
          .map((p) => [p.partition, Number(p.offset)] as const)
          .filter(([, offset]) => offset >= 0);
        return {
          state: group?.state ?? "Dead",
          members: group?.members.length ?? 0,
          committed: new Map(committed),
        };
      },
    },
  };
}

/**
 * node:tls options: the certificates are always verified (never `rejectUnauthorized: false`); without a
 * CA bundle, against the system's CAs.
 */
function tlsOptions(tls: Credentials["kafkaTls"]): ConnectionOptions | undefined {
  if (tls === undefined) return undefined;
  return {
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert ? { cert: tls.cert } : {}),
    ...(tls.key ? { key: tls.key } : {}),
  };
}

function saslOptions(sasl: Credentials["kafkaSasl"]): SASLOptions | undefined {
  if (sasl === undefined) return undefined;
  // KafkaJS keeps the password for reconnecting; it never logs its SASL options.
  return { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password.reveal() };
}

/**
 * Fails with a message naming the brokers or the topic when either is not there. `recentErrors` are the
 * last errors KafkaJS logged: after its retries, the error it throws may be a bland "Not connected" or
 * "write after end" while the TLS alert that explains it came before.
 */
async function preflight(
  admin: Admin,
  options: SourceOptions,
  recentErrors: () => string[],
): Promise<void> {
  try {
    await admin.connect();
  } catch (error) {
    const brokers = options.brokers.join(",");
    const detail = errorChainText(error);
    if ((error as Error).name === "KafkaJSSASLAuthenticationError") {
      throw new Error(
        `Kafka at ${brokers} refused eventsink's SASL credentials (check --kafka-sasl-username and the ` +
          `password): ${detail}`,
      );
    }
    const files = { ca: "--kafka-ca", cert: "--kafka-cert" };
    const tls = [detail, ...recentErrors().toReversed()]
      .map((text) => explainTlsFailure(text, files)).find((explained) => explained !== undefined);
    throw new Error(`Kafka at ${brokers} did not answer: ${tls ?? detail}`);
  }
  const topics = await admin.listTopics();
  for (const topic of [options.topic, options.deadLetterTopic]) {
    if (topic !== undefined && !topics.includes(topic)) {
      throw new Error(`topic "${topic}" does not exist on ${options.brokers.join(",")}`);
    }
  }
}

/** KafkaJS wants Buffers; ours are Uint8Array views, wrapped without copying. */
function asBuffer(bytes: Uint8Array | null): Buffer | null {
  return bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function asHeaders(headers: Record<string, HeaderValue>): IHeaders {
  const one = (value: Uint8Array | string) => (typeof value === "string" ? value : asBuffer(value)!);
  const converted: IHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) converted[name] = Array.isArray(value) ? value.map(one) : one(value);
  }
  return converted;
}

function toHandoff(payload: EachBatchPayload): Handoff {
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

// Only these fields of a KafkaJS log entry are passed on: KafkaJS may attach whole requests elsewhere.
const KAFKA_LOG_FIELDS = ["groupId", "memberId", "topic", "partition", "broker", "retryCount", "retryTime"];

/**
 * KafkaJS logs errors it recovers from (a broker restarting) at ERROR; ours are for what needs a person,
 * so its ERROR and WARN become warn, its INFO debug. The offset-out-of-range line is the only signal
 * KafkaJS gives that records were deleted before they were read.
 */
function routeKafkaLog(entry: LogEntry, log: Logger, events: SourceEvents | undefined): void {
  const { message, error, ...rest } = entry.log as Record<string, unknown> & { message: string };
  const fields: LogFields = { kafkajs: entry.namespace };
  for (const name of KAFKA_LOG_FIELDS) {
    const value = rest[name];
    if (typeof value === "string" || typeof value === "number") fields[name] = value;
  }
  if (typeof error === "string") fields.error = error;
  if (message.startsWith("Offset out of range") && typeof rest.topic === "string") {
    events?.onOffsetOutOfRange(rest.topic, Number(rest.partition));
  }
  if (entry.level === logLevel.ERROR || entry.level === logLevel.WARN) log.warn(`Kafka: ${message}`, fields);
  else log.debug(`Kafka: ${message}`, fields);
}
