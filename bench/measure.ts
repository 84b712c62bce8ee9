/**
 * Measuring one configuration over a bounded window: start it on the backlog (a fresh consumer group),
 * wait for its first stored record, skip a warm-up, then count what the stand-in accepted (or, for the
 * consume-only rows, what the Kafka client handed over) until the window is over or the backlog is done.
 */
import { uniqueName } from "../tests/support/broker.ts";
import { spawnProcess, spawnScript } from "./children.ts";
import { LOAD_BYTES, type RunSpec } from "./configs.ts";
import { cpuSecondsOf, loadAverage, machineCpu, memoryOf } from "./proc.ts";
import { startSink } from "./sinks.ts";
import { LEANSTORE_BINARY, type StoreHost } from "./store_client.ts";

/** Where a run takes place. */
export interface Bench {
  bootstrap: string;
  /** The backlog topic of each size class. */
  topics: Record<string, string>;
  /** Records in each backlog. */
  records: number;
  store: StoreHost;
  /** The broker's JVM, for its CPU time; undefined if it was not found. */
  brokerPid: number | undefined;
  windowMs: number;
  warmupMs: number;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
}

/** What one run measured. */
export interface RunResult {
  spec: RunSpec;
  /** Records per second in the window; NaN when the run failed. */
  rate: number;
  records: number;
  windowS: number;
  /** Whether the backlog ran out before the window's end. */
  exhausted: boolean;
  postMean: number;
  postP50: number;
  postP99: number;
  /** Seconds from starting the process to its first stored record (consume-only: its first batch). */
  startS: number;
  /** VmHWM of the measured process at the end of the window. */
  peakRssMb: number;
  /** CPU seconds of the measured process in the window. */
  cpuS: number;
  storeCpuS: number;
  brokerCpuS: number;
  /** The machine's busy CPU seconds in the window (all cores). */
  machineBusyS: number;
  /** Busy CPU seconds not ours: other work on the machine. */
  othersS: number;
  load: number;
  error?: string;
}

const POLL_MS = 50;
const START_TIMEOUT_MS = 90_000;

interface Progress {
  count: number;
  /** Epoch ms of the sample. */
  at: number;
  firstAt: number | undefined;
  lastAt: number | undefined;
}

interface Running {
  pid: number;
  progress(): Promise<Progress>;
  describe(): string;
  close(): Promise<void>;
}

/** Runs `spec` once and measures it; failures are returned as a result with an error. */
export async function measure(bench: Bench, spec: RunSpec): Promise<RunResult> {
  const load = await loadAverage();
  await bench.store.setLatency(spec.latencyMs);
  await bench.store.reset();
  let running: Running | undefined;
  try {
    const startedAt = Date.now();
    running = await start(bench, spec);
    return await measureWindow(bench, spec, running, { load, startedAt });
  } catch (error) {
    const detail = running ? `\n${running.describe()}` : "";
    return failed(spec, load, `${(error as Error).message}${detail}`);
  } finally {
    await running?.close();
    // Answers to requests in flight when the process was killed must not count for the next run.
    await sleep(spec.latencyMs + 300);
  }
}

async function measureWindow(
  bench: Bench,
  spec: RunSpec,
  running: Running,
  { load, startedAt }: { load: number; startedAt: number },
): Promise<RunResult> {
  const limit = spec.subject.kind === "http" || spec.subject.kind === "load" ? Infinity : bench.records;
  const deadline = Date.now() + START_TIMEOUT_MS;
  let progress = await running.progress();
  while (progress.firstAt === undefined) {
    if (Date.now() > deadline) throw new Error(`nothing arrived within ${START_TIMEOUT_MS / 1000} s`);
    await pause(bench.signal);
    progress = await running.progress();
  }
  const startS = (progress.firstAt! - startedAt) / 1000;
  // The consume-only ceiling runs through a backlog in a second or two: it is measured from its first batch.
  const warmupMs = spec.subject.kind === "consume" ? 0 : bench.warmupMs;
  while (progress.at < progress.firstAt! + warmupMs && progress.count < limit) {
    await pause(bench.signal);
    progress = await running.progress();
  }
  const pids = { own: running.pid, store: bench.store.pid, broker: bench.brokerPid };
  const before = { progress, cpu: await cpuTimes(pids), machine: await machineCpu() };
  await bench.store.startWindow();
  while (progress.at < before.progress.at + bench.windowMs && progress.count < limit) {
    await pause(bench.signal);
    progress = await running.progress();
  }
  const exhausted = progress.count >= limit;
  const after = { progress, cpu: await cpuTimes(pids), machine: await machineCpu() };
  const memory = await memoryOf(running.pid);
  const posts = await bench.store.stopWindow();
  const end = exhausted ? progress.lastAt ?? progress.at : progress.at;
  const windowS = (end - before.progress.at) / 1000;
  const records = after.progress.count - before.progress.count;
  const cpu = (name: keyof typeof after.cpu) => after.cpu[name] - before.cpu[name];
  const machineBusyS = after.machine.busy - before.machine.busy;
  return {
    spec,
    rate: records / windowS,
    records,
    windowS,
    exhausted,
    postMean: posts.mean ?? NaN,
    postP50: posts.p50 ?? NaN,
    postP99: posts.p99 ?? NaN,
    startS,
    peakRssMb: memory?.peakMb ?? NaN,
    cpuS: cpu("own"),
    storeCpuS: cpu("store"),
    brokerCpuS: cpu("broker"),
    machineBusyS,
    othersS: Math.max(0, machineBusyS - cpu("own") - cpu("store") - cpu("broker") - cpu("harness")),
    load,
  };
}

async function cpuTimes(pids: { own: number; store: number; broker: number | undefined }) {
  const of = async (pid: number | undefined) => pid === undefined ? 0 : (await cpuSecondsOf(pid)) ?? 0;
  return {
    own: await of(pids.own),
    store: await of(pids.store),
    broker: await of(pids.broker),
    harness: await of(Deno.pid),
  };
}

/** Starts the subject of `spec` on a fresh consumer group. */
async function start(bench: Bench, spec: RunSpec): Promise<Running> {
  const topic = bench.topics[spec.size];
  if (topic === undefined) throw new Error(`no backlog of size ${spec.size}`);
  const group = uniqueName("bench");
  const subject = spec.subject;
  const storeProgress = async (): Promise<Progress> => {
    const p = await bench.store.progress();
    return { count: p.accepted, at: p.at, firstAt: p.firstAt, lastAt: p.lastAt };
  };
  switch (subject.kind) {
    case "consume": {
      let latest: Progress = { count: 0, at: Date.now(), firstAt: undefined, lastAt: undefined };
      const process = spawnScript(
        "consume_only.ts",
        [subject.client, bench.bootstrap, topic, group],
        (line) => {
          const { records, at } = JSON.parse(line) as { records: number; at: number };
          latest = { count: records, at, firstAt: latest.firstAt ?? at, lastAt: at };
        },
      );
      await process.firstLine;
      return {
        pid: process.pid,
        progress: () => Promise.resolve({ ...latest, at: Date.now() }),
        describe: () => process.stderrTail(),
        close: () => process.close(),
      };
    }
    case "http":
    case "load": {
      // A client that only POSTs (Deno's fetch loop, or the lean store's Go client): the store counts.
      const concurrency = String(subject.concurrency);
      const process = subject.kind === "http"
        ? spawnScript("fetch_loop.ts", [bench.store.url, concurrency, spec.size])
        : spawnProcess("leanstore load", {
          path: LEANSTORE_BINARY,
          args: ["load", bench.store.url, concurrency, String(LOAD_BYTES[spec.size])],
        });
      await process.firstLine;
      return {
        pid: process.pid,
        progress: storeProgress,
        describe: process.stderrTail,
        close: process.close,
      };
    }
    case "naive":
    case "eventsink":
    case "benthos": {
      const sink = await startSink(subject, {
        bootstrap: bench.bootstrap,
        topic,
        group,
        url: bench.store.url,
      });
      return { ...sink, progress: storeProgress };
    }
  }
}

function failed(spec: RunSpec, load: number, error: string): RunResult {
  return {
    spec,
    rate: NaN,
    records: 0,
    windowS: NaN,
    exhausted: false,
    postMean: NaN,
    postP50: NaN,
    postP99: NaN,
    startS: NaN,
    peakRssMb: NaN,
    cpuS: NaN,
    storeCpuS: NaN,
    brokerCpuS: NaN,
    machineBusyS: NaN,
    othersS: NaN,
    load,
    error,
  };
}

function pause(signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  return sleep(POLL_MS);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
