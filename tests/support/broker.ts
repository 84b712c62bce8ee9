/**
 * Real-Kafka harness for the integration tests and the demo: fetches the Kafka jars with Maven,
 * runs a single-node KRaft broker from them, and wraps the admin calls tests need.
 *
 * Tests use the one broker that tests/run.ts starts: see {@link testBroker}.
 */
import { Buffer } from "node:buffer";
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

/** Kafka version used when neither the caller nor `KAFKA_VERSION` names one. */
export const DEFAULT_KAFKA_VERSION = "4.4.0";

const POM = fileURLToPath(new URL("./kafka/pom.xml", import.meta.url));
const CACHE_DIR = fileURLToPath(new URL("../../.cache/kafka/", import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const LOG_TAIL_LINES = 60;
// Short-lived JVMs (storage format, ConsumerGroupCommand) start faster with C1 only and a small heap.
const TOOL_JVM_ARGS = ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];
const BROKER_JVM_ARGS = ["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError"];
// Polls until the owning process is gone, then takes the broker (and its temp dir) with it.
// It ignores INT/TERM so that Ctrl-C on the terminal's process group does not end it before the broker.
const WATCHDOG_SCRIPT = `trap '' INT TERM HUP
while kill -0 "$1" 2>/dev/null; do
  kill -0 "$2" 2>/dev/null || exit 0
  sleep 1
done
kill -9 "$2" 2>/dev/null
[ -n "$3" ] && rm -rf "$3"
exit 0`;

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
  const versionDir = join(CACHE_DIR, version);
  const libs = join(versionDir, "libs");
  const marker = join(versionDir, "complete");
  const pomHash = await sha256Hex(await Deno.readFile(POM));
  if ((await readTextIfExists(marker)) === pomHash) return libs;
  await Deno.mkdir(versionDir, { recursive: true });
  // Download next to the cache and rename, so an interrupted run never leaves a half-filled libs dir.
  const download = await Deno.makeTempDir({ dir: versionDir, prefix: "download-" });
  const args = ["-q", "-B", "-f", POM, "dependency:copy-dependencies", `-Dkafka.version=${version}`];
  if (isKafka3(version)) args.push("-Dkafka3");
  args.push("-DincludeScope=runtime", `-DoutputDirectory=${download}`);
  const result = await runTool("mvn", args, "Maven (mvn) is needed to fetch the Kafka jars");
  if (result.code !== 0) {
    await Deno.remove(download, { recursive: true });
    // Maven 3.8 still writes a colour reset in batch mode.
    const output = result.output.replaceAll("\x1b[0m", "");
    throw new Error(`mvn could not fetch Kafka ${version} (exit ${result.code}):\n${output}`);
  }
  await Deno.remove(marker).catch(ignoreNotFound);
  await Deno.remove(libs, { recursive: true }).catch(ignoreNotFound);
  await Deno.rename(download, libs);
  await Deno.writeTextFile(marker, pomHash);
  return libs;
}

/** Options of {@link startBroker}. */
export interface BrokerOptions {
  /** Kafka version; default {@link kafkaVersion}. */
  version?: string;
  /** Client port on 127.0.0.1; default a free one. */
  port?: number;
  /** Directory for config, log and data; default a fresh temp dir, removed by `stop()`. A given one is never removed. */
  dataDir?: string;
}

/** A running single-node Kafka (KRaft, broker and controller in one JVM). */
export interface Broker {
  /** "127.0.0.1:port", for KafkaJS `brokers` and Kafka's `--bootstrap-server`. */
  readonly bootstrap: string;
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
  const [port, controllerPort] = freePorts(opts.port);
  const ownsDir = opts.dataDir === undefined;
  const dir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "eventsink-kafka-" });
  const layout = brokerLayout(dir, version);
  try {
    await Deno.mkdir(layout.logDirs, { recursive: true });
    await Deno.writeTextFile(layout.serverProperties, serverProperties(port, controllerPort, layout.logDirs));
    await Deno.writeTextFile(layout.logConfig, logConfig(version, layout.logFile));
    await formatStorage(libs, layout);
    const broker = new KafkaBroker(version, libs, port, layout, ownsDir);
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

function serverProperties(port: number, controllerPort: number, logDirs: string): string {
  return [
    "process.roles=broker,controller",
    "node.id=1",
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
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

async function formatStorage(libs: string, layout: BrokerLayout): Promise<void> {
  // A given dataDir may already hold a formatted broker; formatting again would fail.
  if (await exists(join(layout.logDirs, "meta.properties"))) return;
  const args = [...TOOL_JVM_ARGS, layout.logConfigFlag, "-cp", classpath(libs), "kafka.tools.StorageTool"];
  args.push("format", "-t", randomClusterId(), "-c", layout.serverProperties);
  const result = await runTool("java", args, "Java 17+ is needed to run Kafka");
  if (result.code !== 0) {
    throw new Error(`kafka-storage format failed (exit ${result.code}):\n${result.output}`);
  }
}

interface BrokerProcess {
  child: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
  watchdog: Deno.ChildProcess;
  exited: boolean;
  expectExit: boolean;
  /** Set by the first stop/kill; later ones wait for the same end. */
  ended?: Promise<void>;
}

class KafkaBroker implements Broker {
  readonly bootstrap: string;
  #proc: BrokerProcess | undefined;
  #crashed = false;
  #removal: Promise<void> | undefined;

  constructor(
    readonly version: string,
    private readonly libs: string,
    port: number,
    private readonly layout: BrokerLayout,
    private readonly ownsDir: boolean,
  ) {
    this.bootstrap = `127.0.0.1:${port}`;
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
    const text = await readTextIfExists(this.layout.logFile) ?? "(no broker log)";
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  }

  #spawn(): BrokerProcess {
    const java = ["java", ...BROKER_JVM_ARGS, this.layout.logConfigFlag, "-cp", classpath(this.libs)];
    java.push("kafka.Kafka", this.layout.serverProperties);
    // exec keeps the java pid as the child's pid; its console output joins the log4j output.
    const script = 'log=$1; shift; exec "$@" >>"$log" 2>&1';
    const child = new Deno.Command("sh", {
      args: ["-c", script, "sh", this.layout.logFile, ...java],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const proc: BrokerProcess = {
      child,
      status: child.status,
      watchdog: this.#spawnWatchdog(child.pid),
      exited: false,
      expectExit: false,
    };
    proc.status.then(() => {
      proc.exited = true;
      if (!proc.expectExit) this.#crashed = true;
    });
    return proc;
  }

  #spawnWatchdog(pid: number): Deno.ChildProcess {
    const dir = this.ownsDir ? this.layout.dir : "";
    return new Deno.Command("sh", {
      args: ["-c", WATCHDOG_SCRIPT, "sh", String(Deno.pid), String(pid), dir],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  async #terminate(signal: Deno.Signal): Promise<void> {
    const proc = this.#proc;
    if (proc === undefined) return;
    proc.expectExit = true;
    signalChild(proc.child, signal);
    proc.ended ??= this.#reap(proc);
    await proc.ended;
  }

  async #reap(proc: BrokerProcess): Promise<void> {
    if (!(await settlesWithin(proc.status, STOP_TIMEOUT_MS))) {
      signalChild(proc.child, "SIGKILL");
      await proc.status;
    }
    signalChild(proc.watchdog, "SIGKILL");
    await proc.watchdog.status;
    if (this.#proc === proc) this.#proc = undefined;
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

function classpath(libs: string): string {
  return `${libs}/*`;
}

/** A free port on 127.0.0.1 for the client listener (unless given) and one for the controller. */
function freePorts(port: number | undefined): [number, number] {
  // Holding both listeners at once guarantees two different ports.
  const listeners = [
    Deno.listen({ hostname: "127.0.0.1", port: 0 }),
    Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  ];
  const [client, controller] = listeners.map((listener) => listener.addr.port) as [number, number];
  listeners.forEach((listener) => listener.close());
  return [port ?? client, controller === port ? client : controller];
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

interface ToolResult {
  code: number;
  stdout: string;
  output: string;
}

async function runTool(command: string, args: string[], needs: string): Promise<ToolResult> {
  try {
    const { code, stdout, stderr } = await new Deno.Command(command, { args, stdin: "null" }).output();
    const out = new TextDecoder().decode(stdout);
    return { code, stdout: out, output: out + new TextDecoder().decode(stderr) };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`${command} not found on PATH: ${needs}`);
    throw error;
  }
}

function signalChild(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // already exited
  }
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
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

async function sha256Hex(data: Uint8Array<ArrayBuffer>): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
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

function ignoreNotFound(error: unknown): void {
  if (!(error instanceof Deno.errors.NotFound)) throw error;
}
