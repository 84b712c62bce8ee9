/**
 * Real-Kafka harness for the integration tests and the demo: fetches the Kafka jars with Maven,
 * runs a single-node KRaft broker from them, and wraps the admin calls tests need.
 *
 * Tests use the one broker that tests/run.ts starts: see {@link testBroker}.
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Admin,
  AssignerProtocol,
  type IHeaders,
  Kafka,
  type KafkaConfig,
  logLevel,
  Partitioners,
} from "kafkajs";
import {
  classpath,
  ensureMavenJars,
  hex,
  ignoreNotFound,
  logTail,
  runTool,
  spawnWatched,
  stopWatched,
  TOOL_JVM_ARGS,
  type WatchedProcess,
} from "./jvm.ts";

// KafkaJS sets negative timeouts (its request queue); the Node layer's warning about it is noise here.
process.removeAllListeners("warning");
process.on("warning", (warning) => {
  if (warning.name !== "TimeoutNegativeWarning") console.warn(`${warning.name}: ${warning.message}`);
});

/** Kafka version used when neither the caller nor `KAFKA_VERSION` names one. */
export const DEFAULT_KAFKA_VERSION = "4.4.0";

const POM = fileURLToPath(new URL("./kafka/pom.xml", import.meta.url));
const CACHE_DIR = fileURLToPath(new URL("../../.cache/kafka/", import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const LOG_TAIL_LINES = 60;
const BROKER_JVM_ARGS = ["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError"];

/** The Kafka version to use: env `KAFKA_VERSION`, else {@link DEFAULT_KAFKA_VERSION}. */
export function kafkaVersion(): string {
  return Deno.env.get("KAFKA_VERSION") || DEFAULT_KAFKA_VERSION;
}

/**
 * Makes sure the jars of Kafka `version` (broker and tools) are in `<repo>/.cache/kafka/<version>/libs`,
 * running Maven only when that cache is missing, incomplete or from another pom. Returns the libs dir.
 */
export async function ensureKafkaJars(version: string = kafkaVersion()): Promise<string> {
  checkVersion(version);
  return await ensureMavenJars({
    pom: POM,
    dir: join(CACHE_DIR, version),
    args: [`-Dkafka.version=${version}`, ...(isKafka3(version) ? ["-Dkafka3"] : [])],
    what: `Kafka ${version}`,
  });
}

/** Options of {@link startBroker}. */
export interface BrokerOptions {
  /** Kafka version; default {@link kafkaVersion}. */
  version?: string;
  /** Client port on 127.0.0.1; default a free one. */
  port?: number;
  /** Directory for config, log and data; default a fresh temp dir, removed by `stop()`. A given one is never removed. */
  dataDir?: string;
  /** Adds listeners with TLS (client certificates required) and SASL over TLS; PLAINTEXT stays for setup. */
  secure?: SecureListeners;
}

/** The material of {@link BrokerOptions.secure}, as PEM files (Kafka reads PEM since 2.7). */
export interface SecureListeners {
  /** The broker's private key (unencrypted PKCS#8) followed by its certificate chain, in one file. */
  keystore: string;
  /** The CA certificates that client certificates must chain to. */
  truststore: string;
  /** SASL users and passwords: SCRAM-SHA-256 and -512 credentials (made when the storage is formatted) and PLAIN. */
  users: Record<string, string>;
}

/** Where the listeners of {@link BrokerOptions.secure} are, as "127.0.0.1:port". */
export interface SecureBootstraps {
  /** SSL with `ssl.client.auth=required`. */
  ssl: string;
  /** SASL_SSL with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; no client certificate asked for. */
  saslSsl: string;
}

/** A running single-node Kafka (KRaft, broker and controller in one JVM). */
export interface Broker {
  /** "127.0.0.1:port" of the PLAINTEXT listener, for KafkaJS `brokers` and Kafka's `--bootstrap-server`. */
  readonly bootstrap: string;
  /** The TLS listeners, when started with `secure`. */
  readonly secure: SecureBootstraps | undefined;
  /** The Kafka version it runs. */
  readonly version: string;
  /** The broker's log (log4j output and the JVM's own stdout/stderr). */
  readonly logFile: string;
  /** Holds server.properties, the log and the data. */
  readonly dataDir: string;
  /** Whether the broker process is up (it may still be starting). */
  readonly running: boolean;
  /** Whether the process ever exited without `stop()` or `kill()` asking it to. */
  readonly crashed: boolean;
  /** Starts the broker again after `stop({ keepData: true })` or `kill()`: same port, same data. */
  start(): Promise<void>;
  /** SIGTERM, SIGKILL if it is not gone after 15 s; removes the temp dir unless `keepData`. */
  stop(opts?: { keepData?: boolean }): Promise<void>;
  /** Stops (keeping the data) and starts again on the same port, as after an outage. */
  restart(): Promise<void>;
  /** SIGKILL, for hard-failure tests; the data stays for `start()`. */
  kill(): Promise<void>;
  /** The last `lines` lines of the log file. */
  logTail(lines?: number): Promise<string>;
}

/** Formats KRaft storage and starts a broker; resolves once it answers a metadata request. */
export async function startBroker(opts: BrokerOptions = {}): Promise<Broker> {
  const version = opts.version ?? kafkaVersion();
  const libs = await ensureKafkaJars(version);
  const [port, controllerPort, sslPort, saslSslPort] = freePorts(opts.port);
  const ports: ListenerPorts = { port, controllerPort };
  if (opts.secure) ports.secure = { ssl: sslPort, saslSsl: saslSslPort, material: opts.secure };
  const ownsDir = opts.dataDir === undefined;
  const dir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "eventsink-kafka-" });
  const layout = brokerLayout(dir, version);
  try {
    await Deno.mkdir(layout.logDirs, { recursive: true });
    await Deno.writeTextFile(layout.serverProperties, serverProperties(ports, layout.logDirs));
    await Deno.writeTextFile(layout.logConfig, logConfig(version, layout.logFile));
    await formatStorage(libs, layout, opts.secure?.users ?? {});
    const broker = new KafkaBroker(version, libs, ports, layout, ownsDir);
    await broker.start();
    return broker;
  } catch (error) {
    if (ownsDir) await Deno.remove(dir, { recursive: true }).catch(ignoreNotFound);
    throw error;
  }
}

interface BrokerLayout {
  dir: string;
  serverProperties: string;
  logConfig: string;
  logConfigFlag: string;
  logFile: string;
  logDirs: string;
}

function brokerLayout(dir: string, version: string): BrokerLayout {
  const legacy = isKafka3(version);
  const logConfig = join(dir, legacy ? "log4j.properties" : "log4j2.properties");
  return {
    dir,
    serverProperties: join(dir, "server.properties"),
    logConfig,
    // Kafka 3.x logs through reload4j (log4j 1), 4.x through log4j2.
    logConfigFlag: legacy
      ? `-Dlog4j.configuration=file:${logConfig}`
      : `-Dlog4j2.configurationFile=${logConfig}`,
    logFile: join(dir, "broker.log"),
    logDirs: join(dir, "data"),
  };
}

interface ListenerPorts {
  port: number;
  controllerPort: number;
  secure?: { ssl: number; saslSsl: number; material: SecureListeners };
}

function serverProperties(ports: ListenerPorts, logDirs: string): string {
  const { port, controllerPort, secure } = ports;
  const client = [`PLAINTEXT://127.0.0.1:${port}`];
  if (secure) client.push(`SSL://127.0.0.1:${secure.ssl}`, `SASL_SSL://127.0.0.1:${secure.saslSsl}`);
  return [
    "process.roles=broker,controller",
    "node.id=1",
    `listeners=${[...client, `CONTROLLER://127.0.0.1:${controllerPort}`].join(",")}`,
    `advertised.listeners=${client.join(",")}`,
    `listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${
      secure ? ",SSL:SSL,SASL_SSL:SASL_SSL" : ""
    }`,
    ...(secure ? secureProperties(secure.material) : []),
    "controller.listener.names=CONTROLLER",
    "inter.broker.listener.name=PLAINTEXT",
    // A static voter set formats and starts the same way on 3.9 and 4.x (no --standalone needed).
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `log.dirs=${logDirs}`,
    "num.partitions=1",
    "auto.create.topics.enable=false",
    "group.initial.rebalance.delay.ms=0",
    "offsets.topic.replication.factor=1",
    // One partition instead of 50 makes the first group coordinator lookup fast.
    "offsets.topic.num.partitions=1",
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "transaction.state.log.num.partitions=1",
    "share.coordinator.state.topic.replication.factor=1",
    "share.coordinator.state.topic.min.isr=1",
    // After a SIGKILL the restarted broker cannot register until its old session expires (default 9 s).
    "broker.session.timeout.ms=4000",
    "broker.heartbeat.interval.ms=500",
    "num.network.threads=2",
    "num.io.threads=4",
    // The default 128 MiB would take a quarter of the heap for compacting __consumer_offsets.
    "log.cleaner.dedupe.buffer.size=16777216",
    "",
  ].join("\n");
}

function secureProperties(material: SecureListeners): string[] {
  const plainUsers = Object.entries(material.users).map(([name, password]) => `user_${name}="${password}"`);
  return [
    "ssl.keystore.type=PEM",
    `ssl.keystore.location=${material.keystore}`,
    "ssl.truststore.type=PEM",
    `ssl.truststore.location=${material.truststore}`,
    "listener.name.ssl.ssl.client.auth=required",
    "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
    "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule " +
    `required ${plainUsers.join(" ")};`,
    ...["scram-sha-256", "scram-sha-512"].map((mechanism) =>
      `listener.name.sasl_ssl.${mechanism}.sasl.jaas.config=` +
      "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    ),
  ];
}

function logConfig(version: string, logFile: string): string {
  if (isKafka3(version)) {
    return [
      "log4j.rootLogger=INFO, file",
      "log4j.appender.file=org.apache.log4j.FileAppender",
      `log4j.appender.file.File=${logFile}`,
      "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
      "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
      "log4j.logger.kafka.request.logger=WARN",
      "",
    ].join("\n");
  }
  return [
    "status = warn",
    "appender.file.type = File",
    "appender.file.name = file",
    `appender.file.fileName = ${logFile}`,
    "appender.file.layout.type = PatternLayout",
    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
    "rootLogger.level = info",
    "rootLogger.appenderRef.file.ref = file",
    "logger.request.name = kafka.request.logger",
    "logger.request.level = warn",
    "",
  ].join("\n");
}

async function formatStorage(
  libs: string,
  layout: BrokerLayout,
  users: Record<string, string>,
): Promise<void> {
  // A given dataDir may already hold a formatted broker; formatting again would fail.
  if (await exists(join(layout.logDirs, "meta.properties"))) return;
  const args = [...TOOL_JVM_ARGS, layout.logConfigFlag, "-cp", classpath(libs), "kafka.tools.StorageTool"];
  args.push("format", "-t", randomClusterId(), "-c", layout.serverProperties);
  // In KRaft, SCRAM credentials are metadata records: the format step writes them.
  for (const [name, password] of Object.entries(users)) {
    for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-512"]) {
      args.push("--add-scram", `${mechanism}=[name=${name},password=${password}]`);
    }
  }
  const result = await runTool("java", args, "Java 17+ is needed to run Kafka");
  if (result.code !== 0) {
    throw new Error(`kafka-storage format failed (exit ${result.code}):\n${result.output}`);
  }
}

interface BrokerProcess extends WatchedProcess {
  status: Promise<Deno.CommandStatus>;
  exited: boolean;
  expectExit: boolean;
  /** Set by the first stop/kill; later ones wait for the same end. */
  ended?: Promise<void>;
}

class KafkaBroker implements Broker {
  readonly bootstrap: string;
  readonly secure: SecureBootstraps | undefined;
  #proc: BrokerProcess | undefined;
  #crashed = false;
  #removal: Promise<void> | undefined;

  constructor(
    readonly version: string,
    private readonly libs: string,
    ports: ListenerPorts,
    private readonly layout: BrokerLayout,
    private readonly ownsDir: boolean,
  ) {
    this.bootstrap = `127.0.0.1:${ports.port}`;
    this.secure = ports.secure && {
      ssl: `127.0.0.1:${ports.secure.ssl}`,
      saslSsl: `127.0.0.1:${ports.secure.saslSsl}`,
    };
  }

  get logFile(): string {
    return this.layout.logFile;
  }

  get dataDir(): string {
    return this.layout.dir;
  }

  get running(): boolean {
    return this.#proc !== undefined && !this.#proc.exited;
  }

  get crashed(): boolean {
    return this.#crashed;
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (this.#removal) {
      throw new Error(`broker ${this.bootstrap} was stopped without keepData; its data is gone`);
    }
    this.#proc = this.#spawn();
    try {
      await waitUntilReady(this.bootstrap, this.#proc, START_TIMEOUT_MS);
    } catch (error) {
      const tail = await this.logTail();
      await this.kill();
      throw new Error(`Kafka ${this.version} broker did not come up: ${errorMessage(error)}\n${tail}`);
    }
  }

  async stop({ keepData = false }: { keepData?: boolean } = {}): Promise<void> {
    await this.#terminate("SIGTERM");
    if (keepData || !this.ownsDir) return;
    this.#removal ??= Deno.remove(this.layout.dir, { recursive: true }).catch(ignoreNotFound);
    await this.#removal;
  }

  async restart(): Promise<void> {
    await this.stop({ keepData: true });
    await this.start();
  }

  async kill(): Promise<void> {
    await this.#terminate("SIGKILL");
  }

  async logTail(lines = LOG_TAIL_LINES): Promise<string> {
    return await logTail(this.layout.logFile, lines, "(no broker log)");
  }

  #spawn(): BrokerProcess {
    const java = ["java", ...BROKER_JVM_ARGS, this.layout.logConfigFlag, "-cp", classpath(this.libs)];
    java.push("kafka.Kafka", this.layout.serverProperties);
    const watched = spawnWatched(java, {
      logFile: this.layout.logFile,
      removeDir: this.ownsDir ? this.layout.dir : undefined,
    });
    const proc: BrokerProcess = {
      ...watched,
      status: watched.child.status,
      exited: false,
      expectExit: false,
    };
    proc.status.then(() => {
      proc.exited = true;
      if (!proc.expectExit) this.#crashed = true;
    });
    return proc;
  }

  async #terminate(signal: Deno.Signal): Promise<void> {
    const proc = this.#proc;
    if (proc === undefined) return;
    proc.expectExit = true;
    proc.ended ??= stopWatched(proc, signal, STOP_TIMEOUT_MS).then(() => {
      if (this.#proc === proc) this.#proc = undefined;
    });
    await proc.ended;
  }
}

async function waitUntilReady(bootstrap: string, proc: BrokerProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exited) throw new Error(`the broker process exited (${describeStatus(await proc.status)})`);
    if (await clusterAnswers(bootstrap)) return;
    await delay(200);
  }
  throw new Error(`no metadata answer from ${bootstrap} within ${timeoutMs / 1000} s`);
}

async function clusterAnswers(bootstrap: string): Promise<boolean> {
  const admin = kafkaClient(bootstrap, {
    retry: { retries: 0 },
    connectionTimeout: 1000,
    requestTimeout: 3000,
  })
    .admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.length > 0;
  } catch {
    return false; // not listening yet, or still catching up: poll again
  } finally {
    await admin.disconnect();
  }
}

/** A KafkaJS client for `bootstrap` with its logging off: failures surface as thrown errors instead. */
export function kafkaClient(bootstrap: string, config: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: "eventsink-tests",
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    ...config,
  });
}

async function withAdmin<T>(bootstrap: string, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafkaClient(bootstrap).admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Creates `topic` with `partitions` partitions (replication 1) and waits for its leaders; fails if it exists. */
export async function createTopic(bootstrap: string, topic: string, partitions: number): Promise<void> {
  const created = await withAdmin(bootstrap, (admin) =>
    admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    }));
  if (!created) throw new Error(`topic ${topic} already exists`);
}

/** Bytes or text, as records and headers carry them. */
export type Bytes = Uint8Array | string;

/** A record for {@link produce}; without `partition` it goes where KafkaJS's default partitioner puts its key. */
export interface ProduceRecord {
  value: Bytes | null;
  key?: Bytes | null;
  headers?: Record<string, Bytes | Bytes[]>;
  partition?: number;
  /** The record's timestamp (ms since the epoch); default the producer's clock. */
  timestamp?: number;
}

/** Where {@link produce} wrote a record. */
export interface RecordPosition {
  partition: number;
  offset: number;
}

/**
 * Writes `records` to `topic` in one send with an idempotent producer (acks=all) and returns,
 * in input order, the partition and offset each record got.
 */
export async function produce(
  bootstrap: string,
  topic: string,
  records: ProduceRecord[],
): Promise<RecordPosition[]> {
  const partitions = await partitionsOf(bootstrap, topic);
  // Choosing the partitions here (as the producer would) is what lets us tell each record's offset.
  const partitioner = Partitioners.DefaultPartitioner();
  const messages = records.map((record) => {
    const message = {
      key: toBuffer(record.key),
      value: toBuffer(record.value),
      headers: toHeaders(record.headers),
      ...(record.timestamp === undefined ? {} : { timestamp: String(record.timestamp) }),
    };
    const partition = record.partition ?? partitioner({ topic, partitionMetadata: partitions, message });
    return { ...message, partition };
  });
  const producer = kafkaClient(bootstrap).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const written = await producer.send({ topic, acks: -1, messages });
    const next = new Map(written.map((meta) => [meta.partition, Number(meta.baseOffset)]));
    return messages.map(({ partition }) => {
      const offset = next.get(partition);
      if (offset === undefined) throw new Error(`no produce result for ${topic}/${partition}`);
      next.set(partition, offset + 1); // one batch per partition: offsets follow the input order
      return { partition, offset };
    });
  } finally {
    await producer.disconnect();
  }
}

async function partitionsOf(bootstrap: string, topic: string) {
  const metadata = await withAdmin(bootstrap, (admin) => admin.fetchTopicMetadata({ topics: [topic] }));
  const partitions = metadata.topics[0]?.partitions;
  if (!partitions?.length) throw new Error(`topic ${topic} has no partitions`);
  return partitions;
}

function toBuffer(bytes: Bytes | null | undefined): Buffer | string | null {
  if (bytes === undefined || bytes === null) return null;
  return typeof bytes === "string" ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function toHeaders(headers: Record<string, Bytes | Bytes[]> | undefined): IHeaders | undefined {
  if (headers === undefined) return undefined;
  const converted: IHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    converted[name] = Array.isArray(value) ? value.map((v) => toBuffer(v)!) : toBuffer(value)!;
  }
  return converted;
}

/** The offsets `group` committed for each partition of `topic`; -1 where it committed none. */
export async function committedOffsets(
  bootstrap: string,
  group: string,
  topic: string,
): Promise<Map<number, number>> {
  const fetched = await withAdmin(
    bootstrap,
    (admin) => admin.fetchOffsets({ groupId: group, topics: [topic] }),
  );
  const partitions = fetched.find((entry) => entry.topic === topic)?.partitions ?? [];
  return new Map(partitions.map((p) => [p.partition, Number(p.offset)]));
}

/** One row of Kafka's ConsumerGroupCommand `--describe`; -1 stands for its "-". */
export interface ToolGroupOffset {
  topic: string;
  partition: number;
  currentOffset: number;
  logEndOffset: number;
  lag: number;
  consumerId: string;
}

/**
 * The group's offsets as Kafka's own `kafka-consumer-groups --describe` reports them, sorted by
 * topic and partition: an independent check on what KafkaJS says was committed.
 */
export async function committedOffsetsByKafkaTool(
  bootstrap: string,
  group: string,
  version: string = kafkaVersion(),
): Promise<ToolGroupOffset[]> {
  const rows = await consumerGroupCommand(bootstrap, group, [], version);
  // Columns (3.9 and 4.x): GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID;
  // a member without partitions gets a row with "-" for TOPIC and PARTITION.
  return rows
    .filter((cells) => cells[2] !== "-")
    .map((cells) => ({
      topic: cells[1] ?? "",
      partition: toolNumber(cells[2]),
      currentOffset: toolNumber(cells[3]),
      logEndOffset: toolNumber(cells[4]),
      lag: toolNumber(cells[5]),
      consumerId: cells[6] ?? "-",
    }))
    .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}

/** A consumer group as Kafka's ConsumerGroupCommand `--describe --state` reports it. */
export interface ToolGroupState {
  /** "Stable", "Empty", "PreparingRebalance", ... */
  state: string;
  /** The assignor's name; "" while the group is empty. */
  assignmentStrategy: string;
  members: number;
}

/**
 * The group's state as Kafka's own tool reports it: an independent view of the coordinator's.
 * It has no generation id for classic (KafkaJS) groups either; 4.x's GROUP-EPOCH stays "-" for them.
 */
export async function groupStateByKafkaTool(
  bootstrap: string,
  group: string,
  version: string = kafkaVersion(),
): Promise<ToolGroupState> {
  const [cells] = await consumerGroupCommand(bootstrap, group, ["--state"], version);
  if (cells === undefined) throw new Error(`ConsumerGroupCommand reported no state for group ${group}`);
  // Columns: GROUP, COORDINATOR (ID) as "host:port  (id)", ASSIGNMENT-STRATEGY, STATE, #MEMBERS. Read from
  // both ends: 3.9 leaves the strategy blank for an empty group, where 4.x prints "-".
  const strategy = cells.slice(3, -2).join(" ");
  return {
    state: cells.at(-2) ?? "",
    assignmentStrategy: strategy === "-" ? "" : strategy,
    members: toolNumber(cells.at(-1)),
  };
}

/** Runs ConsumerGroupCommand `--describe` and returns its table's rows, split on whitespace. */
async function consumerGroupCommand(
  bootstrap: string,
  group: string,
  extra: string[],
  version: string,
): Promise<string[][]> {
  const libs = await ensureKafkaJars(version);
  const args = [
    ...TOOL_JVM_ARGS,
    "-cp",
    classpath(libs),
    "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
  ];
  args.push("--bootstrap-server", bootstrap, "--describe", "--group", group, ...extra);
  const result = await runTool("java", args, "Java 17+ is needed to run Kafka's tools");
  // The tool exits 0 even when it fails (e.g. an unknown group): its "Error:" line tells.
  if (result.code !== 0 || /^Error:/m.test(result.stdout)) {
    throw new Error(`ConsumerGroupCommand --describe --group ${group} failed:\n${result.output}`);
  }
  // Splitting on whitespace, not on the header's column positions: long names overflow the fixed widths.
  const lines = result.stdout.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  const header = lines.findIndex((line) => line.startsWith("GROUP "));
  return header < 0 ? [] : lines.slice(header + 1).map((line) => line.split(/\s+/));
}

function toolNumber(cell: string | undefined): number {
  if (cell === undefined || cell === "-" || cell === "") return -1;
  const value = Number(cell);
  if (!Number.isFinite(value)) throw new Error(`unexpected number in ConsumerGroupCommand output: ${cell}`);
  return value;
}

/** Low and high watermark of each partition. */
async function watermarks(
  bootstrap: string,
  topic: string,
): Promise<{ partition: number; low: number; high: number }[]> {
  const offsets = await withAdmin(bootstrap, (admin) => admin.fetchTopicOffsets(topic));
  return offsets.map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }));
}

/** Each partition's log-end offset (high watermark): the offset the next record will get. */
export async function endOffsets(bootstrap: string, topic: string): Promise<Map<number, number>> {
  return new Map((await watermarks(bootstrap, topic)).map((w) => [w.partition, w.high]));
}

/** Each partition's log-start offset (low watermark), which retention or {@link deleteRecords} move up. */
export async function startOffsets(bootstrap: string, topic: string): Promise<Map<number, number>> {
  return new Map((await watermarks(bootstrap, topic)).map((w) => [w.partition, w.low]));
}

/** Deletes the records of `topic`/`partition` before `beforeOffset`, as retention would. */
export async function deleteRecords(
  bootstrap: string,
  topic: string,
  partition: number,
  beforeOffset: number,
): Promise<void> {
  await withAdmin(bootstrap, async (admin) => {
    // KafkaJS looks the leader up in its metadata cache without loading the topic first.
    await admin.fetchTopicMetadata({ topics: [topic] });
    await admin.deleteTopicRecords({ topic, partitions: [{ partition, offset: String(beforeOffset) }] });
  });
}

/** A member of a consumer group and the partitions assigned to it, per topic. */
export interface GroupMember {
  memberId: string;
  clientId: string;
  clientHost: string;
  /** Partitions per topic, sorted; empty while the group is rebalancing. */
  assignment: Record<string, number[]>;
}

/** A consumer group as its coordinator describes it (DescribeGroups, which carries no generation id). */
export interface GroupDescription {
  /** "Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead". */
  state: string;
  /** The assignor's name, e.g. "RoundRobinAssigner"; "" while empty. */
  protocol: string;
  members: GroupMember[];
}

/** The members of `group` and their assignments: whether a consumer left or the group rebalanced. */
export async function groupMembers(bootstrap: string, group: string): Promise<GroupDescription> {
  const { groups } = await withAdmin(bootstrap, (admin) => admin.describeGroups([group]));
  const description = groups[0];
  if (description === undefined) throw new Error(`no description for group ${group}`);
  return {
    state: description.state,
    protocol: description.protocol,
    members: description.members.map((member) => ({
      memberId: member.memberId,
      clientId: member.clientId,
      clientHost: member.clientHost,
      assignment: decodeAssignment(member.memberAssignment),
    })),
  };
}

function decodeAssignment(data: Buffer): Record<string, number[]> {
  const assignment = AssignerProtocol.MemberAssignment.decode(data)?.assignment ?? {};
  return Object.fromEntries(
    Object.entries(assignment).map(([topic, partitions]) => [topic, [...partitions].sort((a, b) => a - b)]),
  );
}

/** A Java consumer (Kafka's ConsoleConsumer) in a group, as the original hops-EventSinkKafka was. */
export interface JavaConsumer extends AsyncDisposable {
  /** Its output so far. */
  log(): Promise<string>;
}

/**
 * Starts Kafka's own ConsoleConsumer in `group` and waits until it is the group's member. Its assignors are
 * Kafka's defaults (`range`, `cooperative-sticky`), which KafkaJS does not speak.
 */
export async function startJavaConsumer(
  bootstrap: string,
  topic: string,
  group: string,
  version: string = kafkaVersion(),
): Promise<JavaConsumer> {
  const libs = await ensureKafkaJars(version);
  const logFile = await Deno.makeTempFile({ prefix: "java-consumer-", suffix: ".log" });
  const proc = spawnWatched([
    "java",
    ...TOOL_JVM_ARGS,
    "-cp",
    classpath(libs),
    "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "--bootstrap-server",
    bootstrap,
    "--topic",
    topic,
    "--group",
    group,
  ], { logFile });
  const consumer: JavaConsumer = {
    log: () => Deno.readTextFile(logFile),
    async [Symbol.asyncDispose]() {
      await stopWatched(proc, "SIGTERM", 10_000);
      await Deno.remove(logFile).catch(ignoreNotFound);
    },
  };
  const deadline = Date.now() + 60_000;
  while ((await groupMembers(bootstrap, group).catch(() => null))?.state !== "Stable") {
    if (Date.now() > deadline) {
      const log = await consumer.log();
      await consumer[Symbol.asyncDispose]();
      throw new Error(`the Java consumer did not join group ${group} within a minute:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return consumer;
}

/** A fresh name for a topic or group, so tests sharing the broker never collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${hex(crypto.getRandomValues(new Uint8Array(4)))}`;
}

/** Env var holding the shared test broker's bootstrap, set by tests/run.ts. */
export const BOOTSTRAP_ENV = "EVENTSINK_TEST_BOOTSTRAP";
/** Env var holding the URL of tests/run.ts's broker control endpoint. */
export const CONTROL_ENV = "EVENTSINK_TEST_BROKER_CONTROL";

/** The broker shared by the whole test run, which tests/run.ts started. */
export function testBroker(): { bootstrap: string } {
  return { bootstrap: requireTestEnv(BOOTSTRAP_ENV) };
}

/** Stops the shared broker gracefully, keeping its data (for outage tests); pair with {@link startTestBroker}. */
export async function stopTestBroker(): Promise<void> {
  await controlTestBroker("stop");
}

/** Starts the shared broker again on the same port with the same data; a no-op if it runs. */
export async function startTestBroker(): Promise<void> {
  await controlTestBroker("start");
}

/** SIGKILLs the shared broker (hard failure); {@link startTestBroker} brings it back. */
export async function killTestBroker(): Promise<void> {
  await controlTestBroker("kill");
}

async function controlTestBroker(action: "stop" | "start" | "kill"): Promise<void> {
  const response = await fetch(`${requireTestEnv(CONTROL_ENV)}/${action}`, { method: "POST" });
  const body = await response.text(); // always read: an unread body is a leak to the test sanitizer
  if (!response.ok) throw new Error(`broker ${action} failed: ${response.status} ${body}`);
}

function requireTestEnv(name: string): string {
  const value = Deno.env.get(name);
  if (!value) {
    throw new Error(
      `${name} is not set: integration tests need the broker: run them with \`make test\` (or tests/run.ts)`,
    );
  }
  return value;
}

function isKafka3(version: string): boolean {
  return version.startsWith("3.");
}

function checkVersion(version: string): void {
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`not a Kafka version: ${JSON.stringify(version)}`);
}

/**
 * Four distinct free ports on 127.0.0.1: the client listener (`port` if given), the controller, and the
 * two secure listeners (unused unless asked for).
 */
function freePorts(port: number | undefined): [number, number, number, number] {
  // Holding the listeners at once guarantees different ports.
  const listeners = Array.from({ length: 5 }, () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  const free = listeners.map((listener) => listener.addr.port).filter((p) => p !== port);
  listeners.forEach((listener) => listener.close());
  const [client, controller, ssl, saslSsl] = free as [number, number, number, number];
  return [port ?? client, controller, ssl, saslSsl];
}

/** A KRaft cluster id: 16 random bytes, base64url without padding, not starting with "-" (the CLI would take it for an option). */
function randomClusterId(): string {
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const id = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(
      /=+$/,
      "",
    );
    if (!id.startsWith("-")) return id;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describeStatus(status: Deno.CommandStatus): string {
  return status.signal ? `signal ${status.signal}` : `exit ${status.code}`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
