/** `make bench` options: flags first, then BENCH_* environment variables, then defaults. Pure. */
import { parseArgs } from "node:util";
import type { Ordering } from "./configs.ts";
import { SIZE_CLASSES, type SizeClass } from "./messages.ts";

/** Everything a benchmark run is told. */
export interface BenchOptions {
  quick: boolean;
  repeats: number;
  /** Measuring window per configuration, after the warm-up. */
  windowMs: number;
  /** Skipped after a configuration's first stored record (connections, JIT, first fetches). */
  warmupMs: number;
  /** Records in each backlog. */
  records: number;
  partitions: number;
  keys: number;
  latencies: number[];
  sizes: SizeClass[];
  orderings: Ordering[];
  inFlights: number[];
  /** Only sink configurations whose name matches (the ceilings they need are measured anyway). */
  only: RegExp | undefined;
  /** The produce-to-stored latency runs at a steady offered load. */
  live: boolean;
  liveRate: number;
  liveSeconds: number;
  /** Records of the bounded-memory replay; 0 skips it. */
  memoryRecords: number;
  outputDir: string;
  /** Renders the report of saved results (a .json next to a report) instead of measuring. */
  render: string | undefined;
}

/** The parse result: options, help, or a usage error. */
export type ParsedBench =
  | { kind: "run"; options: BenchOptions }
  | { kind: "help"; text: string }
  | { kind: "error"; message: string };

const ORDERINGS: readonly Ordering[] = ["partition", "key", "message", "none"];

export const HELP = `make bench [ARGS="…"]  —  deno run -A bench/run.ts [options]

Starts a Kafka broker and the EventStore stand-in, writes the backlogs, measures every configuration
over a bounded window (three repeats, interleaved), then a live-latency run and a bounded-memory replay.
Prints a markdown report and writes it to bench/results/<time>.md. Ctrl-C stops and cleans up.
Benthos rows need Go: Benthos is built once from bench/benthos/ into .cache/benthos/ (about 2 minutes);
without Go they are skipped.

  --quick                 a fast look: 1 repeat, short windows, fewer settings   (BENCH_QUICK=1)
  --repeats N             repeats of every configuration (3)                      (BENCH_REPEATS)
  --window S              measuring window per configuration, seconds (8)         (BENCH_WINDOW)
  --warmup S              skipped after the first stored record, seconds (1)      (BENCH_WARMUP)
  --records N             records per backlog (100000)                            (BENCH_RECORDS)
  --latencies L,…         injected EventStore latencies in ms (0,5,20)            (BENCH_LATENCIES)
  --sizes S,…             fixtures (1.3–1.9 KB) and/or 10k (fixtures,10k)         (BENCH_SIZES)
  --orderings O,…         eventsink ordering modes (partition,key,message,none)   (BENCH_ORDERINGS)
  --in-flight N,…         eventsink --max-in-flight settings (1,8,64,256)         (BENCH_IN_FLIGHT)
  --only REGEX            only sink rows whose name matches, e.g. 'naive|key/256' (BENCH_ONLY)
                          ('benthos' for Benthos's rows; 'naive|eventsink' leaves them out)
  --no-live               skip the produce-to-stored latency runs                 (BENCH_LIVE=0)
  --live-rate N           offered load of the latency runs, records/s (200)       (BENCH_LIVE_RATE)
  --live-seconds S        how long the latency runs produce (8)                   (BENCH_LIVE_SECONDS)
  --memory-records N      records of the bounded-memory replay; 0 skips (1000000) (BENCH_MEMORY_RECORDS)
  --output DIR            where the report and its raw results (.json) go (bench/results)
  --render FILE.json      print the report of saved results again (after a change to the report)

--quick is: 1 repeat, 4 s windows, 0.5 s warm-up, latencies 0,20, in-flight 8,256, fixture size only,
30000 records, live 4 s, memory replay of 150000 records; any other option given still wins.`;

/** Reads flags and BENCH_* variables into options. */
export function parseBenchOptions(args: string[], env: (name: string) => string | undefined): ParsedBench {
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: "boolean", short: "h" },
        quick: { type: "boolean" },
        repeats: { type: "string" },
        window: { type: "string" },
        warmup: { type: "string" },
        records: { type: "string" },
        latencies: { type: "string" },
        sizes: { type: "string" },
        orderings: { type: "string" },
        "in-flight": { type: "string" },
        only: { type: "string" },
        "no-live": { type: "boolean" },
        "live-rate": { type: "string" },
        "live-seconds": { type: "string" },
        "memory-records": { type: "string" },
        output: { type: "string" },
        render: { type: "string" },
      },
    }).values;
  } catch (error) {
    return { kind: "error", message: (error as Error).message };
  }
  if (flags.help) return { kind: "help", text: HELP };
  const quick = flags.quick === true || isTrue(env("BENCH_QUICK"));
  const pick = (flag: string, envName: string, normal: string, fast: string): string =>
    (flags[flag] as string | undefined) ?? env(envName) ?? (quick ? fast : normal);
  try {
    const options: BenchOptions = {
      quick,
      repeats: count(pick("repeats", "BENCH_REPEATS", "3", "1"), "repeats", 1),
      windowMs: seconds(pick("window", "BENCH_WINDOW", "8", "4"), "window") * 1000,
      warmupMs: seconds(pick("warmup", "BENCH_WARMUP", "1", "0.5"), "warmup") * 1000,
      records: count(pick("records", "BENCH_RECORDS", "100000", "30000"), "records", 1),
      partitions: 8,
      keys: 10_000,
      latencies: list(pick("latencies", "BENCH_LATENCIES", "0,5,20", "0,20"), "latencies")
        .map((text) => count(text, "latency", 0)),
      sizes: list(pick("sizes", "BENCH_SIZES", "fixtures,10k", "fixtures"), "sizes").map((text) => {
        if (!SIZE_CLASSES.includes(text as SizeClass)) throw new Error(`unknown size ${text}`);
        return text as SizeClass;
      }),
      orderings: list(
        pick("orderings", "BENCH_ORDERINGS", ORDERINGS.join(","), ORDERINGS.join(",")),
        "orderings",
      )
        .map((text) => {
          if (!ORDERINGS.includes(text as Ordering)) throw new Error(`unknown ordering ${text}`);
          return text as Ordering;
        }),
      inFlights: list(pick("in-flight", "BENCH_IN_FLIGHT", "1,8,64,256", "8,256"), "in-flight")
        .map((text) => count(text, "in-flight", 1)),
      only: regex((flags.only as string | undefined) ?? env("BENCH_ONLY")),
      live: flags["no-live"] !== true && !isFalse(env("BENCH_LIVE")),
      liveRate: count(pick("live-rate", "BENCH_LIVE_RATE", "200", "200"), "live-rate", 1),
      liveSeconds: seconds(pick("live-seconds", "BENCH_LIVE_SECONDS", "8", "4"), "live-seconds"),
      memoryRecords: count(
        pick("memory-records", "BENCH_MEMORY_RECORDS", "1000000", "150000"),
        "memory-records",
        0,
      ),
      outputDir: (flags.output as string | undefined) ?? "bench/results",
      render: flags.render as string | undefined,
    };
    return { kind: "run", options };
  } catch (error) {
    return { kind: "error", message: (error as Error).message };
  }
}

function isTrue(text: string | undefined): boolean {
  return text !== undefined && ["1", "true", "yes", "on"].includes(text.trim().toLowerCase());
}

function isFalse(text: string | undefined): boolean {
  return text !== undefined && ["0", "false", "no", "off"].includes(text.trim().toLowerCase());
}

function count(text: string, name: string, least: number): number {
  const value = Number(text.replaceAll("_", ""));
  if (!Number.isInteger(value) || value < least) throw new Error(`${name} must be a whole number ≥ ${least}`);
  return value;
}

function seconds(text: string, name: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number of seconds`);
  return value;
}

function list(text: string, name: string): string[] {
  const items = text.split(",").map((item) => item.trim()).filter((item) => item !== "");
  if (items.length === 0) throw new Error(`${name} must name at least one value`);
  return items;
}

function regex(text: string | undefined): RegExp | undefined {
  if (text === undefined || text === "") return undefined;
  try {
    return new RegExp(text);
  } catch {
    throw new Error(`--only: not a regular expression: ${text}`);
  }
}
