import process from "node:process";
import {
  type Admin,
  CompressionCodecs,
  CompressionTypes,
  Kafka,
  type LogEntry,
  logLevel,
  type SASLOptions,
} from "kafkajs";
import { lz4Codec, snappyCodec, zstdCodec } from "./codecs.ts";
import type { Credentials } from "../security/credentials.ts";
import {
  createInspector,
  createOffsetAdmin,
  type KafkaInspector,
  logEndOffsets,
  type OffsetAdmin,
  type PartitionStarts,
  partitionStartsOf,
} from "./admin.ts";
import { type Consumer, type ConsumerEvents, createConsumer } from "./consumer.ts";
import { createProducer, type Producer } from "./producer.ts";
import type { LogFields, Logger, LogLevel } from "../log.ts";
import { errorChainText, explainTlsFailure } from "../security/tls_errors.ts";
import { tlsOptions } from "../security/tls_files.ts";
import { settledWithin } from "../async.ts";

/** The parts of KafkaJS that eventsink uses, each for the piece that uses it. */
export interface KafkaClient {
  consumer: Consumer;
  producer: Producer;
  partitionStarts: PartitionStarts;
  /** The log-end offset of each partition of `topic`: the next offset a producer writes. */
  logEndOffsets(topic: string): Promise<Map<number, number>>;
  /** Reads the cluster, topics and groups, for `eventsink check`. */
  inspect: KafkaInspector;
  /** A replay's own admin client: it prepares its group before the consumer joins, removes it after. */
  replayAdmin(): OffsetAdmin;
  /** Disconnects the producer (if it was used) and the admin client, within 2 s; after consumer.stop(). */
  close(): Promise<void>;
}

/** Connection and group settings. */
export interface KafkaOptions {
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

/** The client's options from eventsink's settings, the group of this run and the loaded credentials. */
export function kafkaOptions(
  settings: Omit<KafkaOptions, "group" | "deadLetterTopic" | "tls" | "sasl"> & {
    rejected: { deadLetterTopic?: string };
  },
  group: string,
  credentials: Pick<Credentials, "kafkaTls" | "kafkaSasl">,
): KafkaOptions {
  const { brokers, clientId, topic, logLevel } = settings;
  const { deadLetterTopic } = settings.rejected;
  return {
    brokers,
    clientId,
    topic,
    logLevel,
    group,
    deadLetterTopic,
    tls: credentials.kafkaTls,
    sasl: credentials.kafkaSasl,
  };
}

export function createKafkaClient(options: KafkaOptions, log: Logger): KafkaClient {
  let events: ConsumerEvents | undefined;
  let recentErrors: string[] = [];
  const link = watchLink(log, Date.now);
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
        if (entry.level === logLevel.ERROR && entry.namespace === "Connection") link.lost();
        routeKafkaLog(entry, log, events);
      },
      // KafkaJS's own cap (30 s) also sets how long it waits to restart a crashed consumer: after a broker
      // is back, consuming and committing would wait up to that long. Retries stay, only shorter.
      retry: { initialRetryTime: 300, retries, maxRetryTime: MAX_RETRY_MS },
      ssl: options.tls && tlsOptions(options.tls),
      sasl: saslOptions(options.sasl),
    });
  const check = (admin: Admin) => preflight(admin, options, () => recentErrors);
  const connect = (admin: Admin) => connectWithin(admin, options.brokers);
  // Retrying little to connect: at start-up an unreachable broker or a missing topic is reported in
  // seconds, and a dead letter that cannot be written is logged (and retried by us) just as soon.
  const quick = client(2);
  const admin = quick.admin();
  const producer = createProducer(quick);
  return {
    // The consumer retries broker requests without end (3 s apart at most), rather than crash and restart as
    // a new member: a new member's join would wait out the old one's session once the broker is back.
    consumer: createConsumer(client(Number.MAX_SAFE_INTEGER), options, {
      prepare: (handlers) => {
        events = handlers;
        return check(admin);
      },
      onAnswer: link.answered,
    }),
    producer: { publish: producer.publish },
    partitionStarts: partitionStartsOf(admin, options.group),
    logEndOffsets: (topic) => logEndOffsets(admin, topic),
    inspect: createInspector(admin, connect),
    replayAdmin: () => {
      const kafka = client(2);
      return createOffsetAdmin(kafka, kafka.admin(), check);
    },
    async close() {
      const closing = Promise.all([producer.close(), admin.disconnect()]);
      if (!(await settledWithin(closing, CLOSE_MS))) {
        throw new Error(`not closed within ${CLOSE_MS / 1000} s`);
      }
      await closing;
    },
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
async function preflight(admin: Admin, options: KafkaOptions, recentErrors: () => string[]): Promise<void> {
  try {
    await connectWithin(admin, options.brokers);
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

/**
 * Notices the broker going away (KafkaJS's connection errors) and, once the consumer hears from it again,
 * says so with how long it was away; a blip under a second (an idle connection closed) is not worth a line.
 */
function watchLink(log: Logger, now: () => number): { lost(): void; answered(): void } {
  let lostAt: number | undefined;
  return {
    lost: () => void (lostAt ??= now()),
    answered() {
      if (lostAt === undefined) return;
      const awayMs = now() - lostAt;
      lostAt = undefined;
      if (awayMs >= 1_000) log.info("Kafka is back", { awaySeconds: Math.round(awayMs / 1000) });
    },
  };
}

/** The producer and the admin client get this long to close at the end (part of a stop's margin). */
const CLOSE_MS = 2_000;

/** Longest wait between KafkaJS's retries of a broker request, and before it restarts a crashed consumer. */
const MAX_RETRY_MS = 3_000;

/**
 * A port that accepts connections but does not answer Kafka's protocol (a wrong port, a TLS listener
 * reached in plain text) holds KafkaJS's connect for its request timeout and retries (~30 s), after which it
 * says only "Broker not connected": it is named after this long instead.
 */
const ANSWER_MS = 8_000;

async function connectWithin(admin: Admin, brokers: string[]): Promise<void> {
  const connected = admin.connect();
  if (!(await settledWithin(connected, ANSWER_MS))) {
    connected.catch(() => {}); // given up on: the process exits
    throw new Error(
      `it takes connections but gave no Kafka protocol answer within ${ANSWER_MS / 1000} s ` +
        `(check --brokers: is ${brokers.join(",")} a Kafka listener, and does it want TLS or SASL?)`,
    );
  }
  await connected;
}

// Only these fields of a KafkaJS log entry are passed on: KafkaJS may attach whole requests elsewhere.
const KAFKA_LOG_FIELDS = ["groupId", "memberId", "topic", "partition", "broker", "retryCount", "retryTime"];

/**
 * KafkaJS logs errors it recovers from (a broker restarting) at ERROR; ours are for what needs a person,
 * so its ERROR and WARN become warn, its INFO debug. The offset-out-of-range line is the only signal
 * KafkaJS gives that records were deleted before they were read.
 */
function routeKafkaLog(entry: LogEntry, log: Logger, events: ConsumerEvents | undefined): void {
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
