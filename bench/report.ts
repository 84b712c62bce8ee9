/** The benchmark's markdown report: figures, definitions, the issue's targets. Pure. */
import {
  concurrencyOf,
  CONSUME_CLIENTS,
  type ConsumeClient,
  EVENTSINK_CONSUME,
  latencyBound,
  PLATFORMATIC_KAFKA_VERSION,
  type RunSpec,
  specKey,
  type Subject,
  subjectName,
} from "./configs.ts";
import type { LiveResult } from "./live.ts";
import type { RunResult } from "./measure.ts";
import type { MemoryResult } from "./memory.ts";
import type { SizeClass } from "./messages.ts";
import type { BenchOptions } from "./options.ts";
import type { StoreKind } from "./store_client.ts";
import { count, firstLine, fixed, kb, mb, minutes, percent, rate, seconds, spread } from "./format.ts";
import { definitions, liveSection, memorySection } from "./report_sections.ts";
import { median, summarize, type Summary } from "./stats.ts";

/** Facts about the run, for the report's head. */
export interface RunFacts {
  startedAt: Date;
  wallSeconds: number;
  commit: string;
  deno: string;
  kafka: string;
  cores: number;
  loadAtStart: number;
  loadAtEnd: number;
  /** Average value bytes of each backlog. */
  recordBytes: Partial<Record<SizeClass, number>>;
  /** Benthos's version ("v4.27.0"), or why it was left out; undefined in reports of older runs. */
  benthos: string | undefined;
  /** The EventStore the run used; undefined in reports of older runs (the Deno stand-in). */
  store: StoreKind | undefined;
}

/** Everything measured. */
export interface Measured {
  specs: RunSpec[];
  runs: RunResult[];
  live: LiveResult[];
  memory: MemoryResult | undefined;
}

/** Median figures of one spec over its repeats. */
interface Row {
  spec: RunSpec;
  rate: Summary;
  postP50: number;
  postP99: number;
  /** Mean requests in flight at the stand-in (Little's law: rate × mean POST latency). */
  inFlight: number;
  peakRssMb: number;
  cpuS: number;
  /** CPU microseconds of the measured process per record it got stored. */
  cpuUsPerRecord: number;
  /** From starting the process to its first stored record. */
  startS: number;
  windowS: number;
  cores: { own: number; store: number; broker: number; others: number };
  exhausted: boolean;
  errors: string[];
}

/** Min(C/L, consume ceiling, HTTP ceiling) and the term that sets it. */
interface Bound {
  value: number;
  limit: string;
}

const SIZE_TITLES: Record<SizeClass, string> = { fixtures: "fixture sizes", "10k": "10 KB variant" };

/** Renders the whole report. */
export function renderReport(options: BenchOptions, facts: RunFacts, measured: Measured): string {
  const rows = new Map<string, Row>();
  for (const spec of measured.specs) {
    const key = specKey(spec);
    if (!rows.has(key)) rows.set(key, rowOf(spec, measured.runs.filter((r) => specKey(r.spec) === key)));
  }
  const out: string[] = [];
  out.push(`# eventsink benchmark — ${facts.startedAt.toISOString().replace(/\.\d+Z$/, "Z")}`, "");
  out.push(...head(options, facts, measured), "");
  for (const size of options.sizes) {
    out.push(
      `## Throughput, ${SIZE_TITLES[size]} (${kb(facts.recordBytes[size])} per record on average)`,
      "",
    );
    for (const client of CONSUME_CLIENTS) {
      const consume = rows.get(specKey({ subject: { kind: "consume", client }, size, latencyMs: 0 }));
      if (consume) out.push(consumeLine(client, consume), "");
    }
    out.push(...standInCeiling(size, rows, facts.store), "");
    for (const latencyMs of options.latencies) {
      const tableRows = [...rows.values()].filter((row) =>
        row.spec.size === size && row.spec.latencyMs === latencyMs && row.spec.subject.kind !== "consume"
      );
      if (tableRows.length === 0) continue;
      out.push(`### EventStore latency ${latencyMs} ms`, "");
      out.push(...throughputTable(tableRows, rows, options), "");
    }
  }
  out.push(...targets(options, rows, measured.memory), "");
  if (measured.live.length > 0) out.push(...liveSection(options, measured.live), "");
  if (measured.memory) out.push(...memorySection(measured.memory), "");
  out.push(
    ...definitions(options, measured.specs.some((spec) => spec.subject.kind === "benthos"), facts.store),
  );
  const failures = measured.runs.filter((r) => r.error);
  if (failures.length > 0) {
    out.push("", "## Failed runs", "");
    for (const f of failures) {
      out.push(
        `- ${subjectName(f.spec.subject)}, ${f.spec.size}, ${f.spec.latencyMs} ms: ${firstLine(f.error!)}`,
      );
    }
  }
  return out.join("\n") + "\n";
}

function head(options: BenchOptions, facts: RunFacts, measured: Measured): string[] {
  const ok = measured.runs.filter((r) => !r.error);
  const others = ok.map((r) => r.othersS / r.windowS);
  const busy = ok.map((r) => r.machineBusyS / r.windowS);
  return [
    `eventsink ${facts.commit}, Deno ${facts.deno}, Kafka ${facts.kafka} (one KRaft broker), ` +
    `${facts.cores} cores, loopback only. Wall time ${minutes(facts.wallSeconds)}.`,
    "",
    `**Machine load** (shared with other work): load average ${facts.loadAtStart.toFixed(1)} at the start, ` +
    `${facts.loadAtEnd.toFixed(1)} at the end; during the measuring windows the machine was busy ` +
    `${fixed(median(busy), 2)} of ${facts.cores} cores (median), of which ${fixed(median(others), 2)} ` +
    `cores (median; max ${
      fixed(others.length ? Math.max(...others) : NaN, 2)
    }) were other processes than the benchmark's. ` +
    "Figures are noisy accordingly; the spread column shows how much.",
    "",
    `**Setup**: one topic per record size, ${options.partitions} partitions, ${
      count(options.records)
    } records ` +
    `keyed over ${count(options.keys)} keys (UUIDs, random), valid FHIR messages made from the test ` +
    "fixtures with fresh ids. Every configuration replays the same backlog in a fresh consumer group, as a " +
    `real process (eventsink with its own permission set${benthosNote(facts)}), and is measured for ${
      seconds(options.windowMs)
    } ` +
    `after a ${seconds(options.warmupMs)} warm-up that starts with its first stored record — or until the ` +
    `backlog is done, whichever comes first. ${options.repeats} repeat${options.repeats > 1 ? "s" : ""}, ` +
    "configurations interleaved (every configuration once per round, order shuffled per round); figures are " +
    "medians over the repeats.",
  ];
}

/**
 * The stand-in's own ceiling: its CPU per answered POST at its cheapest (the ceiling rows at 0 ms:
 * keep-alive, nothing but POSTs), what one core answers at that cost, and for the lean store the rate its
 * own Go client measured; beside them the fastest sink row.
 */
function standInCeiling(size: SizeClass, rows: Map<string, Row>, store: StoreKind | undefined): string[] {
  const ofSize = [...rows.values()].filter((row) =>
    row.spec.size === size && row.spec.subject.kind !== "consume" && Number.isFinite(row.rate.median)
  );
  const isCeiling = (row: Row) => row.spec.subject.kind === "http" || row.spec.subject.kind === "load";
  const loops = ofSize.filter((row) => isCeiling(row) && row.spec.latencyMs === 0);
  const perAnswerUs = Math.min(
    ...loops.map((row) => (row.cores.store / row.rate.median) * 1e6).filter(Number.isFinite),
  );
  if (!Number.isFinite(perAnswerUs)) return [];
  const perCore = 1e6 / perAnswerUs;
  const sinks = ofSize.filter((row) => !isCeiling(row));
  const fastest = sinks.reduce<Row | undefined>(
    (best, row) => (row.rate.median > (best?.rate.median ?? -1) ? row : best),
    undefined,
  );
  const loads = loops.filter((row) => row.spec.subject.kind === "load");
  const measured = loads.reduce<Row | undefined>(
    (best, row) => (row.rate.median > (best?.rate.median ?? -1) ? row : best),
    undefined,
  );
  const ceiling = measured?.rate.median ?? perCore;
  const share = fastest ? fastest.rate.median / ceiling : NaN;
  const who = store === "lean"
    ? "EventStore stand-in (the lean store: Go, bench/leanstore/, counts and answers 202, stores nothing)"
    : "EventStore stand-in (bench/store_host.ts: the test stand-in, Deno, one JavaScript thread)";
  return [
    `${who}: at its cheapest (the ceiling rows at 0 ms) it spends **${fixed(perAnswerUs, 0)} µs of CPU per ` +
    `answered POST**, about **${rate(perCore)} POST/s per core**` +
    (measured
      ? `; its own Go client measured **${rate(measured.rate.median)} records/s** (${
        subjectName(measured.spec.subject)
      }, client and store on the same cores)`
      : "") +
    "." +
    (fastest
      ? ` The fastest sink row below, ${
        subjectName(fastest.spec.subject)
      } at ${fastest.spec.latencyMs} ms, ` +
        `reached ${rate(fastest.rate.median)}/s, ${percent(share)} of ${
          measured ? "that" : "one core's worth"
        }` +
        (share > 0.5 ? ": at such rates the stand-in, not the sink, can be the limit." : ".")
      : ""),
  ];
}

function benthosNote(facts: RunFacts): string {
  if (facts.benthos === undefined) return "";
  return facts.benthos.startsWith("v")
    ? `; Benthos ${facts.benthos}, a build of bench/benthos/`
    : `; Benthos left out: ${facts.benthos}`;
}

function rowOf(spec: RunSpec, runs: RunResult[]): Row {
  const ok = runs.filter((r) => !r.error);
  const med = (pick: (r: RunResult) => number) => median(ok.map(pick));
  return {
    spec,
    rate: summarize(ok.map((r) => r.rate)),
    postP50: med((r) => r.postP50),
    postP99: med((r) => r.postP99),
    inFlight: med((r) => (r.rate * r.postMean) / 1000),
    peakRssMb: med((r) => r.peakRssMb),
    cpuS: med((r) => r.cpuS),
    cpuUsPerRecord: med((r) => (r.cpuS / r.records) * 1e6),
    // Older saved runs have no startS.
    startS: med((r) => r.startS ?? NaN),
    windowS: med((r) => r.windowS),
    cores: {
      own: med((r) => r.cpuS / r.windowS),
      store: med((r) => r.storeCpuS / r.windowS),
      broker: med((r) => r.brokerCpuS / r.windowS),
      others: med((r) => r.othersS / r.windowS),
    },
    exhausted: ok.some((r) => r.exhausted),
    errors: runs.flatMap((r) => (r.error ? [r.error] : [])),
  };
}

/** The bound of a sink row: min(C/L, consume ceiling, HTTP ceiling at the same C, L and size). */
function boundOf(row: Row, rows: Map<string, Row>, options: BenchOptions): Bound | undefined {
  const { subject, size, latencyMs } = row.spec;
  const c = concurrencyOf(subject, options.partitions);
  if (c === undefined) return undefined;
  const terms: Bound[] = [{ value: latencyBound(c, latencyMs), limit: "C/L" }];
  if (subject.kind !== "http" && subject.kind !== "load") {
    const consume = rows.get(specKey({ subject: EVENTSINK_CONSUME, size, latencyMs: 0 }));
    if (consume) terms.push({ value: consume.rate.median, limit: "consume" });
    const http = rows.get(specKey({ subject: { kind: "http", concurrency: c }, size, latencyMs }));
    if (http) terms.push({ value: http.rate.median, limit: "HTTP" });
  }
  const usable = terms.filter((t) => !Number.isNaN(t.value));
  return usable.reduce((least, t) => (t.value < least.value ? t : least));
}

function throughputTable(tableRows: Row[], rows: Map<string, Row>, options: BenchOptions): string[] {
  const lines = [
    "| configuration | C | records/s | spread (min–max) | bound: min(C/L, ceilings) | efficiency | " +
    "POST p50 / p99 ms | in flight | peak RSS MB | CPU µs / record | start → stored s | CPU s / window s | " +
    "cores: own · stand-in · broker · others |",
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const row of tableRows) {
    const bound = boundOf(row, rows, options);
    const c = concurrencyOf(row.spec.subject, options.partitions);
    const efficiency = bound && Number.isFinite(bound.value) ? row.rate.median / bound.value : NaN;
    const name = subjectName(row.spec.subject) + (row.exhausted ? " ⁽ᵉ⁾" : "") +
      (row.errors.length ? ` (${row.errors.length} failed)` : "");
    lines.push(
      `| ${name} | ${c ?? ""} | ${rate(row.rate.median)} | ${spread(row.rate)} | ` +
        `${bound ? `${rate(bound.value)} (${bound.limit})` : "—"} | ${percent(efficiency)} | ` +
        `${fixed(row.postP50, 1)} / ${fixed(row.postP99, 1)} | ${fixed(row.inFlight, 0)} | ${
          mb(row.peakRssMb)
        } | ${fixed(row.cpuUsPerRecord, 0)} | ${fixed(row.startS, 1)} | ` +
        `${fixed(row.cpuS, 1)} / ${fixed(row.windowS, 1)} | ${fixed(row.cores.own, 2)} · ` +
        `${fixed(row.cores.store, 2)} · ${fixed(row.cores.broker, 2)} · ${fixed(row.cores.others, 2)} |`,
    );
  }
  return lines;
}

function targets(options: BenchOptions, rows: Map<string, Row>, memory: MemoryResult | undefined): string[] {
  const lines = ["## Issue 8 targets", "", "| target | measured | needed | |", "|---|--:|--:|---|"];
  const find = (subject: Subject, size: SizeClass, latencyMs: number) =>
    rows.get(specKey({ subject, size, latencyMs }));
  const verdict = (ok: boolean | undefined) => ok === undefined ? "not measured" : ok ? "met" : "**missed**";
  for (const size of options.sizes) {
    const tag = size === "fixtures" ? "" : ` (${SIZE_TITLES[size]})`;
    const key256 = find({ kind: "eventsink", ordering: "key", maxInFlight: 256 }, size, 20);
    const naive = find({ kind: "naive" }, size, 20);
    if (key256) {
      const bound = boundOf(key256, rows, options);
      const eff = bound ? key256.rate.median / bound.value : NaN;
      lines.push(
        `| key/256 at 20 ms: share of min(C/L, ceilings)${tag} | ${percent(eff)} of ${
          bound ? rate(bound.value) : "?"
        } (${bound?.limit ?? "?"}) | ≥ 70 % | ${verdict(Number.isNaN(eff) ? undefined : eff >= 0.7)} |`,
      );
      if (naive) {
        const times = key256.rate.median / naive.rate.median;
        lines.push(
          `| key/256 at 20 ms vs naive sink${tag} | ${fixed(times, 1)}× (${rate(key256.rate.median)} vs ${
            rate(naive.rate.median)
          }) | ≥ 20× | ${verdict(Number.isNaN(times) ? undefined : times >= 20)} |`,
        );
      }
    }
    const pl = latencyBound(options.partitions, 20);
    for (const row of rows.values()) {
      const s = row.spec.subject;
      if (row.spec.size !== size || row.spec.latencyMs !== 20 || s.kind !== "eventsink") continue;
      // Only rows in partition order (eventsink's default is message order).
      if (s.ordering !== "partition" || (s.maxInFlight ?? 16) < options.partitions) continue;
      const share = row.rate.median / pl;
      const http = find({ kind: "http", concurrency: options.partitions }, size, 20);
      const ofHttp = http
        ? `; ${percent(row.rate.median / http.rate.median)} of the HTTP ceiling at C=P`
        : "";
      lines.push(
        `| ${subjectName(s).replace("eventsink ", "")} at 20 ms: share of P/L = ${rate(pl)}${tag} | ` +
          `${percent(share)} (${rate(row.rate.median)}${ofHttp}) | ≥ 90 % | ${verdict(share >= 0.9)} |`,
      );
    }
    const defaults = find({ kind: "eventsink" }, size, 0);
    const consume = find(EVENTSINK_CONSUME, size, 0);
    if (defaults && consume) {
      const share = defaults.rate.median / consume.rate.median;
      const http = find({ kind: "http", concurrency: options.partitions }, size, 0);
      const httpShare = http
        ? `; the HTTP ceiling at C=P itself is ${percent(http.rate.median / consume.rate.median)}`
        : "";
      lines.push(
        `| defaults at 0 ms: share of consume-only ceiling${tag} | ${percent(share)} (${
          rate(defaults.rate.median)
        } of ${rate(consume.rate.median)}${httpShare}) | ≥ 60 % | ${verdict(share >= 0.6)} |`,
      );
    }
  }
  if (memory) {
    lines.push(
      `| peak RSS replaying ${count(memory.records)} records | ${mb(memory.peakMb)} MB${
        memory.stored < memory.records ? ` (after ${count(memory.stored)} records)` : ""
      } | < 200 MB | ${verdict(memory.peakMb < 200)} |`,
    );
  }
  return lines;
}

/** A consume-only row as a sentence: its rate, memory and the CPU it and the broker spend per record. */
function consumeLine(client: ConsumeClient, row: Row): string {
  const who = client === "kafkajs"
    ? "Consume-only ceiling (KafkaJS eachBatch, no HTTP)"
    : `Consume-only with @platformatic/kafka ${PLATFORMATIC_KAFKA_VERSION} instead (same fetch settings)`;
  const brokerUs = (row.cores.broker / row.rate.median) * 1e6;
  return `${who}: **${rate(row.rate.median)} records/s** (${spread(row.rate)}), peak RSS ${
    mb(row.peakRssMb)
  } MB, CPU ${fixed(row.cpuS, 1)} s in ${fixed(row.windowS, 1)} s (${
    fixed(row.cpuUsPerRecord, 0)
  } µs per record; ` +
    `the broker's ${fixed(brokerUs, 0)} µs).`;
}
