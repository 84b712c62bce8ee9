/** The report's sections after the throughput tables: live latency, bounded memory, definitions. Pure. */
import { BENTHOS_VERSION, subjectName } from "./configs.ts";
import { count, firstLine, latency, mb, minutes, rate } from "./format.ts";
import type { LiveResult } from "./live.ts";
import type { MemoryResult } from "./memory.ts";
import type { BenchOptions } from "./options.ts";
import type { StoreKind } from "./store_client.ts";
import { median } from "./stats.ts";

export function liveSection(options: BenchOptions, live: LiveResult[]): string[] {
  const lines = [
    "## Produce-to-stored latency at a steady load",
    "",
    `Each sink caught up on a fresh topic (${options.partitions} partitions); then ${options.liveRate} ` +
    `records/s are produced for ${options.liveSeconds} s. Latency of a record: from the producer's send to ` +
    "the stand-in's 2xx answer. Records not stored within 5 s after the last send count as ∞. Medians over " +
    "the repeats.",
    "",
    "| configuration | EventStore latency | stored / produced | p50 ms | p99 ms | max ms |",
    "|---|--:|--:|--:|--:|--:|",
  ];
  const groups = new Map<string, LiveResult[]>();
  for (const result of live) {
    const key = `${subjectName(result.subject)}|${result.latencyMs}`;
    groups.set(key, [...(groups.get(key) ?? []), result]);
  }
  for (const results of groups.values()) {
    const ok = results.filter((r) => !r.error);
    const first = results[0]!;
    const med = (pick: (r: LiveResult) => number) => median(ok.map(pick));
    lines.push(
      `| ${subjectName(first.subject)} | ${first.latencyMs} ms | ${count(med((r) => r.stored))} / ${
        count(med((r) => r.produced))
      } | ${latency(med((r) => r.p50))} | ${latency(med((r) => r.p99))} | ${latency(med((r) => r.max))} |` +
        (ok.length < results.length ? ` (${results.length - ok.length} failed)` : ""),
    );
  }
  return lines;
}

export function memorySection(memory: MemoryResult): string[] {
  const lines = [
    `## Bounded memory: ${subjectName(memory.subject)} replaying ${count(memory.records)} records at 0 ms`,
    "",
    `Stored ${count(memory.stored)} of ${count(memory.records)} records in ${minutes(memory.seconds)} ` +
    `(${rate(memory.stored / memory.seconds)} records/s); peak RSS (VmHWM) **${mb(memory.peakMb)} MB**. ` +
    "RSS sampled every second; shown at each tenth of the way:" +
    (memory.error ? ` (${firstLine(memory.error)})` : ""),
    "",
    "| elapsed s | records stored | RSS MB | peak RSS MB |",
    "|--:|--:|--:|--:|",
  ];
  let nextTenth = 0;
  for (const sample of memory.samples) {
    const tenth = Math.floor((sample.stored / memory.records) * 10);
    if (tenth < nextTenth && sample !== memory.samples.at(-1)) continue;
    nextTenth = tenth + 1;
    lines.push(
      `| ${sample.elapsedS.toFixed(0)} | ${count(sample.stored)} | ${mb(sample.rssMb)} | ${
        mb(sample.peakMb)
      } |`,
    );
  }
  const rss = memory.samples.map((s) => s.rssMb);
  const half = Math.floor(rss.length / 2);
  if (rss.length >= 4) {
    lines.push(
      "",
      `RSS median over the first half of the replay ${mb(median(rss.slice(0, half)))} MB, over the second ` +
        `half ${mb(median(rss.slice(half)))} MB.`,
    );
  }
  return lines;
}

export function definitions(options: BenchOptions, benthos: boolean, store: StoreKind | undefined): string[] {
  return [
    "## Definitions",
    "",
    store === "lean"
      ? "- **stand-in**: the lean EventStore (bench/leanstore/, Go's net/http, built into .cache/leanstore/): " +
        "answers every POST to `$process-message` that has a body with 202 and an empty body after L, counting it; it " +
        "checks and stores nothing (the sinks' messages are the backlog's valid ones)."
      : "- **stand-in**: bench/store_host.ts, the test stand-in (tests/support/eventstore.ts) in a Deno " +
        "process of its own: it checks and stores every message (Go was missing, so the lean store was not built).",
    "- **records/s**: records the stand-in answered 2xx (for the consume-only rows: records the Kafka client " +
    "handed over) during the window, divided by its length. ⁽ᵉ⁾: the backlog ran out before the window " +
    "ended (window ends with the last record). The consume-only rows have no warm-up: they are measured from " +
    "their first batch, as they run through a backlog in seconds. The @platformatic/kafka row is there to " +
    "weigh a change of client: eventsink runs on KafkaJS.",
    "- **C**: requests that can be in flight — `--max-in-flight` for key and none; min(in-flight, P = " +
    `${options.partitions} partitions) for partition order; 1 for the naive sink. **L**: injected latency.`,
    "- **bound**: min(C/L, consume-only ceiling, HTTP ceiling at the same C, L and size); C/L is ∞ at 0 ms. " +
    "For an HTTP ceiling row the bound is C/L alone. **efficiency** = records/s ÷ bound.",
    "- **HTTP ceiling C=n**: a bare fetch loop keeping n POSTs in flight against the same stand-in (keep-alive " +
    "pool of n, HTTP/1.1), cycling 5,000 distinct messages of the size. eventsink sends HTTP/1.1 through " +
    "undici, which costs less CPU per request than fetch: where the stand-in is the limit both meet it, " +
    "elsewhere eventsink can pass this ceiling (efficiency over 100 %).",
    ...(store === "lean"
      ? [
        "- **lean store ceiling C=n (Go client)**: the lean store's own ceiling — its load generator " +
        "(`leanstore load`: Go's HTTP client, keep-alive pool of n) keeping n POSTs of the size class's mean " +
        "record in flight; client and store share the machine. Its bound is C/L alone.",
      ]
      : []),
    "- **naive sink**: KafkaJS eachMessage + `await fetch` per record, one at a time, as the original service.",
    ...(benthos ? [benthosLine()] : []),
    "- **POST p50 / p99**: latency of the 2xx POSTs in the window as the stand-in sees it — from a request's " +
    "arrival (headers read) to its answer; it holds the injected latency and the stand-in's own work and " +
    "queueing, not the sink's; the Deno stand-in stamps arrival in whole milliseconds, the lean store in nanoseconds. A backlog replay has no meaningful produce-to-stored latency (every record was " +
    "produced before the sink started), so that is measured apart, at a steady load (above).",
    "- **in flight**: mean number of POSTs under way at the stand-in in the window, by Little's law: " +
    "records/s × mean POST latency. Far below C means the sink does not keep its requests in flight.",
    "- **CPU µs / record**: CPU seconds of the measured process in the window ÷ the records stored in it " +
    "(the stand-in's and the broker's CPU are not in it; see cores). **start → stored s**: from starting " +
    "the process to the stand-in's first 2xx answer — start-up, joining the group, the first fetch and POST " +
    "(and L).",
    "- **peak RSS**: VmHWM of the measured process (/proc/<pid>/status) at the end of the window.",
    "- **CPU s**: user + system CPU seconds of the measured process in the window (/proc/<pid>/stat). " +
    "**cores**: CPU seconds ÷ window seconds of the measured process, the stand-in, the Kafka broker, and " +
    "everything else on the machine (other users' work; from /proc/stat).",
  ];
}

function benthosLine(): string {
  return (
    `- **benthos ${BENTHOS_VERSION} max_in_flight n**: Benthos v${BENTHOS_VERSION} built from bench/benthos/ ` +
    "(only its io, kafka and pure components; go.mod and go.sum pin it) and run as its own process: input " +
    "`kafka_franz` (the run's fresh group, `start_from_oldest`; up to 1,024 records of a partition under way, " +
    "its default `checkpoint_limit`), output `http_client` (POST, `Content-Type: application/fhir+json`, " +
    "`max_in_flight` n, default retries), logs at WARN, its HTTP server on a free port. It keeps no order " +
    "among the requests in flight (as eventsink's `none`). Its HTTP client is Go's default transport, which " +
    "keeps at most 2 idle connections per host: with more than 2 in flight most POSTs open a new connection, " +
    "and the stand-in pays for each (see its cores)."
  );
}
