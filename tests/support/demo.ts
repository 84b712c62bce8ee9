/**
 * `make demo`: a local pipeline that shows eventsink's job. Fetches Kafka (once, showing Maven's progress),
 * starts a Kafka broker and the stand-in EventStore, writes the example FHIR messages (and a few invalid
 * variants) to a topic, runs eventsink against them until every record is accounted for, prints what arrived
 * where, the eventsink command it ran and the next steps. Ctrl-C stops it all.
 *
 * {@link runDemo} is the part after the broker, which tests/demo_test.ts runs against the test broker.
 */
import { fileURLToPath } from "node:url";
import {
  committedOffsets,
  createTopic,
  endOffsets,
  ensureKafkaJars,
  kafkaVersion,
  produce,
  startBroker,
} from "./broker.ts";
import { spawnRaw } from "./eventsink_process.ts";
import { startEventStore } from "./eventstore.ts";
import {
  asResponseTo,
  conflictingVariant,
  type FhirBundle,
  invalidVariants,
  loadFixtures,
  messageIdOf,
  withNewIds,
} from "./fhir_variants.ts";

const TOPIC = "helseopplysninger.rapid";
const GROUP = "hops-eventsink-group";
const CONTENT_TYPE = "application/fhir+json; fhirVersion=4.0";
const POM = fileURLToPath(new URL("./kafka/pom.xml", import.meta.url));
const KAFKA_CACHE = fileURLToPath(new URL("../../.cache/kafka/", import.meta.url));
/** How often the fetch of Kafka says how far it has come. */
const PROGRESS_EVERY_MS = 3_000;
const encoder = new TextEncoder();

interface DemoRecord {
  label: string;
  bundle: FhirBundle;
  /** Default the message id. */
  key?: string;
  /** Default application/fhir+json; fhirVersion=4.0. */
  contentType?: string;
}

/** Where {@link runDemo} runs and where it writes. */
export interface DemoOptions {
  bootstrap: string;
  topic: string;
  group: string;
  /** One line of output (without its line break). */
  print: (line: string) => void;
  /** Ends the demo at its next wait. */
  interrupted: AbortSignal;
}

/** What became of one record, as the demo prints it. */
export interface DemoRow {
  label: string;
  partition: number;
  offset: number;
  /** The EventStore's answer to the last POST of the record; undefined when it was never posted. */
  status: number | undefined;
  outcome: string;
}

/** What {@link runDemo} did. */
export interface DemoResult {
  rows: DemoRow[];
  /** eventsink's flags, as given to the process. */
  eventsinkArgs: string[];
  exitCode: number;
  /** What its /readyz answered once every record was accounted for. */
  readiness: string;
}

async function main(interrupted: AbortSignal): Promise<void> {
  await fetchKafka(kafkaVersion(), (line) => console.log(line), interrupted);
  step("Starting a Kafka broker (KRaft, one node)");
  const started = Date.now();
  const broker = await startBroker();
  await using _stopBroker = { [Symbol.asyncDispose]: () => broker.stop() };
  step(`Kafka broker on ${broker.bootstrap} (started in ${secondsSince(started)})`);
  const print = (line: string) => console.log(line);
  await runDemo({ bootstrap: broker.bootstrap, topic: TOPIC, group: GROUP, print, interrupted });
}

/** The demo on a running broker: topic, records, the stand-in, eventsink, and what arrived where. */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { bootstrap, topic, group, print } = options;
  await using store = await startEventStore();
  step(`EventStore stand-in on ${store.url} (answers as hops-eventstore does)`, print);
  await createTopic(bootstrap, topic, 3);
  const { records, values } = await demoRecords();
  const positions = await produce(
    bootstrap,
    topic,
    records.map((r, i) => ({
      key: r.key ?? messageIdOf(r.bundle),
      value: values[i]!,
      headers: { "Content-Type": r.contentType ?? CONTENT_TYPE },
    })),
  );
  step(`Wrote ${records.length} records to topic ${topic}`, print);

  // The flags as an operator would give them; nothing secret (the stand-in takes no token). A free port for
  // the HTTP endpoint, so that the demo runs beside an eventsink that has the default one, 127.0.0.1:8095.
  const eventsinkArgs = [
    ...["--brokers", bootstrap, "--topic", topic, "--group", group, "--eventstore-url", store.url],
    ...["--http-listen", "127.0.0.1:0"],
  ];
  step("Running eventsink (its log follows)", print);
  const sink = await spawnRaw(eventsinkArgs);
  const echo = logEcho(sink.output, print);
  let exitCode: number;
  let readiness: string;
  try {
    const ends = await endOffsets(bootstrap, topic);
    await waitFor(options.interrupted, async () => {
      const committed = await committedOffsets(bootstrap, group, topic);
      // A partition no record went to has nothing to commit.
      return [...ends].every(([partition, end]) => end === 0 || committed.get(partition) === end);
    });
    readiness = await askReadiness(sink.output());
    echo.flush();
    step(`Every record accounted for; eventsink's readiness: ${readiness}`, print);
    step("Stopping eventsink (SIGTERM)", print);
    sink.signal("SIGTERM");
    exitCode = await sink.exited();
  } finally {
    echo.stop();
    await sink.close();
  }

  const rows = records.map((record, i) => rowOf(record, values[i]!, positions[i]!, topic, store));
  print("");
  print("What arrived where:");
  for (const row of rows) print(`  ${row.partition}@${row.offset}  ${row.label.padEnd(48)} ${row.outcome}`);
  const committed = await committedOffsets(bootstrap, group, topic);
  const described = [...committed].map(([p, o]) => `partition ${p} → ${o < 0 ? "none (no records)" : o}`);
  print("");
  print(`Committed offsets of ${group}: ${described.join(", ")}`);
  print("Every record is accounted for: delivered, or rejected and skipped with a log line.");
  printNextSteps(eventsinkArgs, print);
  return { rows, eventsinkArgs, exitCode, readiness };
}

/**
 * The platform's traffic: an order, the dialog message answering it, a patient link, a re-delivery, and what
 * the real EventStore refuses. A record's key is its message id; the answer is keyed by the order it answers,
 * so that it follows the order in its partition (the store refuses an answer to an unknown order).
 */
async function demoRecords(): Promise<{ records: DemoRecord[]; values: Uint8Array[] }> {
  const fixtures = await loadFixtures();
  const [order, dialog, patientLink] = fixtures.map((f) => withNewIds(f.bundle)) as [
    FhirBundle,
    FhirBundle,
    FhirBundle,
  ];
  const variant = (name: string) => invalidVariants(fixtures[0]!.bundle).find((v) => v.name === name)!.bundle;
  const records: DemoRecord[] = [
    { label: "order (Task + Questionnaire)", bundle: order },
    {
      label: "dialog message answering the order",
      bundle: asResponseTo(dialog, messageIdOf(order)),
      key: messageIdOf(order),
    },
    { label: "patient link", bundle: patientLink },
    { label: "the patient link again (a re-delivery)", bundle: patientLink },
    { label: "invalid: MessageHeader without source", bundle: variant("missing-source") },
    { label: "invalid: upper-case message id", bundle: variant("upper-case-message-id") },
    {
      label: "invalid: same id as the order, other content",
      bundle: conflictingVariant(order),
      key: messageIdOf(order),
    },
    {
      label: "sent as application/json",
      bundle: withNewIds(fixtures[0]!.bundle),
      contentType: "application/json",
    },
  ];
  return { records, values: records.map((r) => encoder.encode(JSON.stringify(r.bundle, null, 2))) };
}

type Store = Awaited<ReturnType<typeof startEventStore>>;

/** What the stand-in made of one record, from the request eventsink sent for it. */
function rowOf(
  record: DemoRecord,
  value: Uint8Array,
  position: { partition: number; offset: number },
  topic: string,
  store: Store,
): DemoRow {
  // eventsink's X-Request-ID names the record it posted: eventsink-<topic>-<partition>-<offset>.
  const { partition, offset } = position;
  const requestId = `eventsink-${topic}-${partition}-${offset}`;
  const answer = store.requests().findLast((r) => r.headers["x-request-id"] === requestId);
  const kept = store.stored().find((s) => s.messageId === messageIdOf(record.bundle));
  // The stored message keeps the headers of the request that stored it; a repeat was answered 202 too.
  const storedByThis = kept !== undefined && kept.headers["x-request-id"] === requestId;
  const identical = kept !== undefined && kept.body.length === value.length &&
    kept.body.every((byte, j) => byte === value[j]);
  const outcome = answer?.status !== 202
    ? `rejected with ${answer?.status ?? "no answer"}: skipped and logged by eventsink`
    : storedByThis
    ? `stored by the EventStore (${kept.body.length} bytes, ${
      identical ? "byte-identical" : "DIFFERENT BYTES"
    })`
    : "202: already stored, not stored twice";
  return { label: record.label, partition, offset, status: answer?.status ?? undefined, outcome };
}

/** `/readyz` of the eventsink whose log is `output` (text format), as `curl -s` would show it. */
async function askReadiness(output: string): Promise<string> {
  const listening = /HTTP endpoint listening hostname=(\S+) port=(\d+)/.exec(output);
  if (listening === null) return "(no HTTP endpoint in its log)";
  const url = `http://${listening[1]}:${listening[2]}/readyz`;
  const answer = await fetch(url).catch((error) => error as Error);
  if (answer instanceof Error) return `curl -s ${url}: ${answer.message}`;
  return `curl -s ${url} → ${answer.status} ${(await answer.text()).trim()}`;
}

/** The command the demo ran, and where a real deployment goes from here. */
function printNextSteps(eventsinkArgs: string[], print: (line: string) => void): void {
  const args = eventsinkArgs.map(shellQuote).join(" ");
  print("");
  print("The eventsink the demo ran, from source with the permissions of eventsink.permissions:");
  print(`  make run ARGS="${args}"`);
  print("The binary takes the same flags, or the same settings as EVENTSINK_* environment variables:");
  print(`  eventsink ${args}`);
  print("");
  print("Next, toward a real deployment (README.md):");
  print('  1. "Install": put the eventsink binary on the machine.');
  print('  2. "First run against your Kafka and EventStore": eventsink check, then eventsink, then');
  print("     curl -s 127.0.0.1:8095/readyz.");
  print('  3. "Running as a systemd service": the unit, the environment file and the credentials.');
}

/**
 * Makes sure Kafka's jars are cached. On a first run Maven downloads them (about 60 MB, a minute or so):
 * its own transfer log is summarised every few seconds, so that the wait shows what it is doing.
 */
export async function fetchKafka(
  version: string,
  print: (line: string) => void,
  interrupted: AbortSignal,
): Promise<void> {
  if (await kafkaCached(version)) {
    step(`Apache Kafka ${version}: cached in .cache/kafka/${version}`, print);
    return;
  }
  step(
    `Fetching Apache Kafka ${version} and its libraries from Maven Central with mvn (once; cached in ` +
      `.cache/kafka/${version} afterwards)`,
    print,
  );
  const args = [
    "-B",
    "-f",
    POM,
    "dependency:resolve",
    "-DincludeScope=runtime",
    `-Dkafka.version=${version}`,
  ];
  if (version.startsWith("3.")) args.push("-Dkafka3");
  const resolved = await mavenWithProgress(args, print).catch((error) => {
    // ensureKafkaJars below runs Maven again and says what is missing (mvn not installed, no network, …).
    print(`  (cannot show Maven's progress: ${(error as Error).message})`);
    return false;
  });
  // Ctrl-C reached Maven too (the terminal's process group): do not start it again.
  interrupted.throwIfAborted();
  if (resolved) step("Copying the jars to .cache/kafka", print);
  await ensureKafkaJars(version);
}

/** What Maven downloaded so far, from its transfer log. */
export interface Downloads {
  files: number;
  bytes: number;
  /** The name of the last jar downloaded (most files are poms). */
  latest: string | undefined;
}

/**
 * Runs mvn with `args`, printing every {@link PROGRESS_EVERY_MS} how long it has run and what it downloaded;
 * resolves whether it succeeded (a failure's output is for ensureKafkaJars to report).
 */
export async function mavenWithProgress(
  args: string[],
  print: (line: string) => void,
  command = "mvn",
): Promise<boolean> {
  const started = Date.now();
  const child = new Deno.Command(command, { args, stdin: "null", stdout: "piped", stderr: "null" }).spawn();
  const downloads: Downloads = { files: 0, bytes: 0, latest: undefined };
  const report = () => {
    const so = downloads.files === 0
      ? "Maven is starting"
      : `${downloads.files} files, ${megabytes(downloads.bytes)} downloaded` +
        (downloads.latest === undefined ? "" : ` (latest jar: ${downloads.latest})`);
    print(`  ${secondsSince(started).padStart(4)}  ${so}`);
  };
  const ticker = setInterval(report, PROGRESS_EVERY_MS);
  try {
    for await (const line of lines(child.stdout)) countDownload(line, downloads);
    const { success } = await child.status;
    if (success) {
      print(`  done in ${secondsSince(started)}: ${downloads.files} files, ${megabytes(downloads.bytes)}`);
    }
    return success;
  } finally {
    clearInterval(ticker);
  }
}

// Maven's batch-mode transfer log: "[INFO] Downloaded from central: https://…/x-1.0.jar (6.4 MB at 2.1 MB/s)".
const DOWNLOADED = /Downloaded from [^:]+: (\S+) \(([\d.]+) (B|kB|KB|MB|GB)\b/;
const UNITS: Record<string, number> = { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9 };

/** Counts a line of Maven's output that says a file was downloaded. */
export function countDownload(line: string, downloads: Downloads): void {
  const match = DOWNLOADED.exec(line);
  if (match === null) return;
  downloads.files++;
  downloads.bytes += Number(match[2]) * UNITS[match[3]!]!;
  const file = match[1]!.slice(match[1]!.lastIndexOf("/") + 1);
  if (file.endsWith(".jar")) downloads.latest = file;
}

/** Whether ensureKafkaJars would find Kafka's jars cached (its marker holds the pom's hash). */
async function kafkaCached(version: string): Promise<boolean> {
  try {
    const marker = await Deno.readTextFile(`${KAFKA_CACHE}${version}/complete`);
    const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(POM));
    const hash = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    return marker === hash;
  } catch {
    return false;
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let pending = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (pending + text).split("\n");
    pending = parts.pop()!;
    yield* parts;
  }
  if (pending !== "") yield pending;
}

/** Echoes a process's complete new log lines, indented, every 200 ms and once more when stopped. */
function logEcho(output: () => string, print: (line: string) => void): { flush(): void; stop(): void } {
  let printed = 0;
  const flush = () => {
    const text = output();
    const end = text.lastIndexOf("\n") + 1;
    if (end <= printed) return;
    for (const line of text.slice(printed, end - 1).split("\n")) print(`    ${line}`);
    printed = end;
  };
  const timer = setInterval(flush, 200);
  return {
    flush,
    stop() {
      clearInterval(timer);
      flush();
    },
  };
}

function step(text: string, print: (line: string) => void = (line) => console.log(line)): void {
  print(`▸ ${text}`);
}

function secondsSince(started: number): string {
  return `${Math.round((Date.now() - started) / 1000)} s`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** A word as a POSIX shell reads it back (URLs and host:port lists pass as they are). */
function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

async function waitFor(
  interrupted: AbortSignal,
  condition: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // The group's coordinator may not know the group yet: an error here means "not yet".
  while (!(await condition().catch(() => false))) {
    interrupted.throwIfAborted();
    if (Date.now() > deadline) throw new Error("eventsink did not account for every record within a minute");
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

if (import.meta.main) {
  // Ctrl-C ends the demo at its next wait; the `using` blocks then stop eventsink, the stand-in and Kafka.
  const interrupt = new AbortController();
  Deno.addSignalListener("SIGINT", () => interrupt.abort(new Error("interrupted; cleaning up")));
  try {
    await main(interrupt.signal);
  } catch (error) {
    console.error(`demo: ${(error as Error).message}`);
    Deno.exitCode = 1;
  }
}
