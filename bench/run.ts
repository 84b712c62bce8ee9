/**
 * `make bench`: eventsink's throughput side by side with its ceilings and a naive sink, on one broker and
 * one backlog, then produce-to-stored latency at a steady load and a bounded-memory replay. Prints a
 * markdown report and writes it to bench/results/<time>.md. Not part of `make test`.
 *
 *   deno run -A bench/run.ts [--quick] [options]      (--help lists them)
 *
 * Stops by itself; Ctrl-C (or SIGTERM) stops early, cleans up the broker, the stand-in and every sink,
 * and still writes the report of what was measured.
 */
import { join } from "node:path";
import process from "node:process";
import { ensureKafkaJars, kafkaVersion, startBroker, uniqueName } from "../tests/support/broker.ts";
import { produceBacklog } from "./backlog.ts";
import { ensureBenthos } from "./benthos.ts";
import { cleanUpAll, onCleanUp } from "./children.ts";
import {
  benthosSubjects,
  concurrencyOf,
  CONSUME_CLIENTS,
  LOAD_CONCURRENCIES,
  type RunSpec,
  sinkSubjects,
  type Subject,
  subjectName,
} from "./configs.ts";
import { type LiveResult, measureLive } from "./live.ts";
import { measure, type RunResult } from "./measure.ts";
import { type MemoryResult, replayForMemory } from "./memory.ts";
import type { SizeClass } from "./messages.ts";
import { type BenchOptions, parseBenchOptions } from "./options.ts";
import { loadAverage, pidsWithArgument } from "./proc.ts";
import { type Measured, renderReport, type RunFacts } from "./report.ts";
import { chooseStore, startStoreHost, type StoreHost } from "./store_client.ts";

/** The memory replay gives up after this long (a stuck or very slow replay must still end). */
const MEMORY_MAX_SECONDS = 45 * 60;
/** Distinct messages in the memory replay's backlog; records beyond reuse them (answered 202 all the same). */
const MEMORY_DISTINCT = 100_000;
const LIVE_SUBJECTS: Subject[] = [
  { kind: "naive" },
  { kind: "eventsink" },
  { kind: "eventsink", ordering: "key", maxInFlight: 256 },
  { kind: "benthos", maxInFlight: 256 },
];

async function main(): Promise<number> {
  const parsed = parseBenchOptions(Deno.args, (name) => Deno.env.get(name));
  if (parsed.kind === "help") {
    console.log(parsed.text);
    return 0;
  }
  if (parsed.kind === "error") {
    console.error(`bench: ${parsed.message}\nRun 'deno run -A bench/run.ts --help' for the options.`);
    return 2;
  }
  const options = parsed.options;
  if (options.render !== undefined) {
    const saved = JSON.parse(await Deno.readTextFile(options.render), (_, value) => fromJson(value));
    console.log(
      renderReport(
        saved.options,
        { ...saved.facts, startedAt: new Date(saved.facts.startedAt) },
        saved.measured,
      ),
    );
    return 0;
  }
  // KafkaJS (the admin and producer used here) sets negative timeouts; Node's warning about it is noise.
  process.removeAllListeners("warning");
  const interrupt = new AbortController();
  const onSignal = (signal: Deno.Signal) => () => {
    if (interrupt.signal.aborted) return;
    progress(`${signal}: stopping and cleaning up`);
    interrupt.abort(new Error(`interrupted by ${signal}`));
  };
  Deno.addSignalListener("SIGINT", onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));
  try {
    await bench(options, interrupt.signal);
    return 0;
  } catch (error) {
    if (interrupt.signal.aborted) return 130;
    console.error(`bench failed: ${(error as Error).stack ?? error}`);
    return 1;
  } finally {
    await cleanUpAll();
  }
}

async function bench(options: BenchOptions, signal: AbortSignal): Promise<void> {
  const startedAt = new Date();
  const facts: RunFacts = {
    startedAt,
    wallSeconds: 0,
    commit: await gitCommit(),
    deno: Deno.version.deno,
    kafka: kafkaVersion(),
    cores: navigator.hardwareConcurrency,
    loadAtStart: await loadAverage(),
    loadAtEnd: NaN,
    recordBytes: {},
    benthos: undefined,
    store: undefined,
  };
  const measured: Measured = { specs: [], runs: [], live: [], memory: undefined };
  const outputPath = join(options.outputDir, `${compactTime(startedAt)}.md`);
  const rawPath = outputPath.replace(/\.md$/, ".json");
  const write = async (note?: string) => {
    facts.wallSeconds = (Date.now() - startedAt.getTime()) / 1000;
    facts.loadAtEnd = await loadAverage();
    const report = renderReport(options, facts, measured) + (note ? `\n_${note}_\n` : "");
    await Deno.mkdir(options.outputDir, { recursive: true });
    await Deno.writeTextFile(outputPath, report);
    // The raw figures, for --render after a change to the report.
    const raw = { options: { ...options, only: options.only?.source }, facts, measured };
    await Deno.writeTextFile(rawPath, JSON.stringify(raw, (_, value) => toJson(value)));
    return report;
  };
  try {
    await run(options, signal, facts, measured, write);
  } catch (error) {
    if (!signal.aborted) throw error;
    await write(`Interrupted (${(error as Error).message}); the figures above are what was measured before.`);
    progress(`partial report written to ${outputPath}`);
    throw error;
  }
  const report = await write();
  console.log(report);
  progress(`report written to ${outputPath}; wall time ${(facts.wallSeconds / 60).toFixed(1)} min`);
}

async function run(
  options: BenchOptions,
  signal: AbortSignal,
  facts: RunFacts,
  measured: Measured,
  write: () => Promise<string>,
): Promise<void> {
  progress(`load average ${facts.loadAtStart}; fetching Kafka ${facts.kafka} (cached after the first run)`);
  await ensureKafkaJars(facts.kafka);
  signal.throwIfAborted();
  const benthosVersion = await benthosStatus(options, signal);
  facts.benthos = benthosVersion;
  const broker = await startBroker({ version: facts.kafka });
  onCleanUp(() => broker.stop());
  signal.throwIfAborted();
  const [brokerPid] = await pidsWithArgument(join(broker.dataDir, "server.properties"));
  progress(`Kafka broker on ${broker.bootstrap} (pid ${brokerPid ?? "unknown"})`);
  const storeKind = await chooseStore(progress, signal);
  facts.store = storeKind;
  const store = await startStoreHost(storeKind);
  progress(
    `EventStore stand-in (${storeKind === "lean" ? "lean store, Go" : "bench/store_host.ts, Deno"}) on ` +
      `${store.url} (pid ${store.pid})`,
  );

  const topics: Partial<Record<SizeClass, string>> = {};
  for (const size of options.sizes) {
    const topic = uniqueName(`bench-${size}`);
    const began = Date.now();
    const bytes = await produceBacklog(broker.bootstrap, topic, {
      partitions: options.partitions,
      records: options.records,
      size,
      keys: options.keys,
    });
    signal.throwIfAborted();
    topics[size] = topic;
    facts.recordBytes[size] = bytes / options.records;
    progress(
      `backlog ${topic}: ${options.records} records, ${(bytes / 1e6).toFixed(0)} MB, ` +
        `${((Date.now() - began) / 1000).toFixed(0)} s`,
    );
  }

  const benthos = benthosVersion.startsWith("v");
  measured.specs = specsOf(options, benthos, storeKind === "lean");
  const bench = {
    bootstrap: broker.bootstrap,
    topics: topics as Record<string, string>,
    records: options.records,
    store,
    brokerPid,
    windowMs: options.windowMs,
    warmupMs: options.warmupMs,
    signal,
  };
  const total = measured.specs.length * options.repeats;
  let done = 0;
  for (let round = 1; round <= options.repeats; round++) {
    for (const spec of shuffled(measured.specs, round)) {
      signal.throwIfAborted();
      const result = await measure(bench, spec);
      signal.throwIfAborted();
      measured.runs.push(result);
      progress(`[${++done}/${total}] round ${round}: ${describeRun(result)}`);
    }
    await write();
  }

  if (options.live) {
    const subjects = LIVE_SUBJECTS.filter((s) => wanted(options, s) && (benthos || s.kind !== "benthos"));
    for (let round = 1; round <= options.repeats; round++) {
      for (const latencyMs of options.latencies) {
        for (const subject of subjects) {
          const result: LiveResult = await measureLive(subject, {
            bootstrap: broker.bootstrap,
            store,
            partitions: options.partitions,
            keys: options.keys,
            rate: options.liveRate,
            seconds: options.liveSeconds,
            latencyMs,
            signal,
          });
          measured.live.push(result);
          progress(
            `live ${subjectName(subject)} at ${latencyMs} ms: p50 ${result.p50.toFixed(0)} ms, p99 ` +
              `${result.p99.toFixed(0)} ms, ${result.stored}/${result.produced} stored${
                result.error ? ` — ${result.error}` : ""
              }`,
          );
        }
      }
    }
    await write();
  }

  if (options.memoryRecords > 0) measured.memory = await memoryRun(options, broker.bootstrap, store, signal);
}

async function memoryRun(
  options: BenchOptions,
  bootstrap: string,
  store: StoreHost,
  signal: AbortSignal,
): Promise<MemoryResult> {
  const topic = uniqueName("bench-memory");
  const began = Date.now();
  const bytes = await produceBacklog(bootstrap, topic, {
    partitions: options.partitions,
    records: options.memoryRecords,
    size: "fixtures",
    keys: options.keys,
    distinct: MEMORY_DISTINCT,
    onProgress: (written) => {
      if (written % 100_000 < 3_000) progress(`memory backlog: ${written} records written`);
      signal.throwIfAborted();
    },
  });
  progress(
    `memory backlog ${topic}: ${options.memoryRecords} records, ${(bytes / 1e6).toFixed(0)} MB, ` +
      `${((Date.now() - began) / 1000).toFixed(0)} s`,
  );
  const subject: Subject = { kind: "eventsink", ordering: "key", maxInFlight: 256 };
  let lastTenth = -1;
  const result = await replayForMemory(subject, {
    bootstrap,
    topic,
    records: options.memoryRecords,
    store,
    maxSeconds: MEMORY_MAX_SECONDS,
    signal,
    onSample: (sample) => {
      const tenth = Math.floor((sample.stored / options.memoryRecords) * 10);
      if (tenth === lastTenth) return;
      lastTenth = tenth;
      progress(
        `memory replay: ${sample.stored} stored after ${sample.elapsedS.toFixed(0)} s, RSS ` +
          `${sample.rssMb.toFixed(0)} MB (peak ${sample.peakMb.toFixed(0)} MB)`,
      );
    },
  });
  progress(
    `memory replay: peak RSS ${result.peakMb.toFixed(0)} MB${result.error ? ` — ${result.error}` : ""}`,
  );
  return result;
}

/**
 * Builds Benthos if a row wants it. Returns its version ("v4.27.0"), or why it is left out (the run goes on
 * without it).
 */
async function benthosStatus(options: BenchOptions, signal: AbortSignal): Promise<string> {
  if (!benthosSubjects().some((s) => wanted(options, s))) return "not asked for (--only)";
  const build = await ensureBenthos(progress, signal);
  if (build.kind === "skipped") {
    progress(`benthos: skipped (${build.reason})`);
    return build.reason;
  }
  progress(`benthos ${build.version}: ${build.built ? "built" : "cached"} (.cache/benthos/benthos)`);
  return build.version;
}

/**
 * Every spec of the run: per size the consume ceiling; per latency the sinks, the HTTP ceilings they need
 * and (`lean`) the lean store's own ceiling.
 */
function specsOf(options: BenchOptions, benthos: boolean, lean: boolean): RunSpec[] {
  const specs: RunSpec[] = [];
  const sinks = [...sinkSubjects(options.orderings, options.inFlights), ...(benthos ? benthosSubjects() : [])]
    .filter((s) => wanted(options, s));
  const concurrencies = [...new Set(sinks.map((s) => concurrencyOf(s, options.partitions)!))].sort((a, b) =>
    a - b
  );
  for (const size of options.sizes) {
    for (const client of CONSUME_CLIENTS) {
      specs.push({ subject: { kind: "consume", client }, size, latencyMs: 0 });
    }
    for (const latencyMs of options.latencies) {
      for (const concurrency of concurrencies) {
        specs.push({ subject: { kind: "http", concurrency }, size, latencyMs });
      }
      for (const concurrency of lean ? LOAD_CONCURRENCIES : []) {
        specs.push({ subject: { kind: "load", concurrency }, size, latencyMs });
      }
      for (const subject of sinks) specs.push({ subject, size, latencyMs });
    }
  }
  return specs;
}

function wanted(options: BenchOptions, subject: Subject): boolean {
  return options.only === undefined || options.only.test(subjectName(subject));
}

/** A deterministic shuffle per round, so that no configuration always runs right after another. */
function shuffled<T>(items: readonly T[], round: number): T[] {
  const copy = [...items];
  let seed = 0x9e3779b9 ^ round;
  const random = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

function describeRun(result: RunResult): string {
  const { spec } = result;
  const where = `${subjectName(spec.subject)}, ${spec.size}, ${
    spec.subject.kind === "consume" ? "-" : `${spec.latencyMs} ms`
  }`;
  if (result.error) return `${where}: FAILED ${result.error.split("\n")[0]}`;
  return `${where}: ${Math.round(result.rate)} records/s over ${result.windowS.toFixed(1)} s, ` +
    `RSS ${result.peakRssMb.toFixed(0)} MB, CPU ${result.cpuS.toFixed(1)} s, stand-in ` +
    `${(result.storeCpuS / result.windowS).toFixed(2)} cores, others ${
      (result.othersS / result.windowS).toFixed(2)
    } cores`;
}

async function gitCommit(): Promise<string> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).trim();
  };
  try {
    const commit = await git("rev-parse", "--short", "HEAD");
    const dirty = (await git("status", "--porcelain", "--", "src", "main.ts")) !== "";
    return `${commit}${dirty ? " (with uncommitted changes in src/ or main.ts)" : ""}`;
  } catch {
    return "(unknown commit)";
  }
}

/** JSON has no NaN or Infinity (a latency of a record never stored): they are saved as text. */
function toJson(value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) ? String(value) : value;
}

function fromJson(value: unknown): unknown {
  return value === "NaN" || value === "Infinity" || value === "-Infinity" ? Number(value) : value;
}

function progress(message: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
}

function compactTime(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

Deno.exit(await main());
