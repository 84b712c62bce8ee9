/** What the benchmark measures: the configurations, their names and their theoretical bounds. Pure. */
import type { SizeClass } from "./messages.ts";

/** eventsink's ordering modes (src/sink/ordering.ts). */
export type Ordering = "partition" | "key" | "message" | "none";

/** The Kafka clients of the consume-only rows (bench/consume_only.ts). */
export type ConsumeClient = "kafkajs" | "platformatic";

export const CONSUME_CLIENTS: readonly ConsumeClient[] = ["kafkajs", "platformatic"];

/** The consume-only ceiling of eventsink's own client, which bounds every sink row. */
export const EVENTSINK_CONSUME: Subject = { kind: "consume", client: "kafkajs" };

/** The @platformatic/kafka release measured: the version pinned in deno.json. */
export const PLATFORMATIC_KAFKA_VERSION = "2.12.1";

/** One thing to measure, at one size and one EventStore latency. */
export type Subject =
  /** Reading the backlog without HTTP: eventsink's Kafka client, or another one beside it. */
  | { kind: "consume"; client: ConsumeClient }
  | { kind: "http"; concurrency: number }
  /** The lean store's own ceiling: its Go load generator (`leanstore load`) keeping C POSTs in flight. */
  | { kind: "load"; concurrency: number }
  | { kind: "naive" }
  /** `ordering`/`maxInFlight` undefined: eventsink's defaults, no flags given. */
  | { kind: "eventsink"; ordering?: Ordering; maxInFlight?: number }
  /** Benthos (bench/benthos/): kafka_franz → http_client with `max_in_flight`. */
  | { kind: "benthos"; maxInFlight: number };

/** A subject at a record size and an injected latency (the consume-only ceiling has no latency). */
export interface RunSpec {
  subject: Subject;
  size: SizeClass;
  latencyMs: number;
}

/** eventsink's defaults (the option table in src/config/), for the row of eventsink run without flags. */
export const EVENTSINK_DEFAULTS = { ordering: "message" as Ordering, maxInFlight: 16 };

/** The Benthos release measured: the version pinned in bench/benthos/go.mod. */
export const BENTHOS_VERSION = "4.27.0";

/** The row name of a subject, e.g. "eventsink key/256", "HTTP ceiling C=64". */
export function subjectName(subject: Subject): string {
  switch (subject.kind) {
    case "consume":
      // Results saved before the second client have no `client`: theirs is KafkaJS.
      return subject.client === "platformatic"
        ? `consume-only, @platformatic/kafka ${PLATFORMATIC_KAFKA_VERSION}`
        : "consume-only ceiling";
    case "http":
      return `HTTP ceiling C=${subject.concurrency}`;
    case "load":
      return `lean store ceiling C=${subject.concurrency} (Go client)`;
    case "naive":
      return "naive sink";
    case "eventsink":
      return subject.ordering === undefined
        ? `eventsink defaults (${EVENTSINK_DEFAULTS.ordering}/${EVENTSINK_DEFAULTS.maxInFlight})`
        : `eventsink ${subject.ordering}/${subject.maxInFlight}`;
    case "benthos":
      return `benthos ${BENTHOS_VERSION} max_in_flight ${subject.maxInFlight}`;
  }
}

/**
 * Requests that can be in flight at once: C in C/L. Partition order allows one per partition, so at most
 * min(in-flight, P); the naive sink one; Benthos its output's max_in_flight (kafka_franz lets up to 1,024
 * records of a partition be under way, its checkpoint_limit).
 */
export function concurrencyOf(subject: Subject, partitions: number): number | undefined {
  switch (subject.kind) {
    case "consume":
      return undefined;
    case "http":
    case "load":
      return subject.concurrency;
    case "naive":
      return 1;
    case "eventsink": {
      const ordering = subject.ordering ?? EVENTSINK_DEFAULTS.ordering;
      const inFlight = subject.maxInFlight ?? EVENTSINK_DEFAULTS.maxInFlight;
      return ordering === "partition" ? Math.min(inFlight, partitions) : inFlight;
    }
    case "benthos":
      return subject.maxInFlight;
  }
}

/** C/L in records per second; Infinity at 0 ms (no bound). */
export function latencyBound(concurrency: number, latencyMs: number): number {
  return latencyMs <= 0 ? Infinity : concurrency / (latencyMs / 1000);
}

/** The sink subjects to measure: baseline, eventsink's defaults, each ordering × in-flight setting. */
export function sinkSubjects(orderings: readonly Ordering[], inFlights: readonly number[]): Subject[] {
  const subjects: Subject[] = [{ kind: "naive" }, { kind: "eventsink" }];
  for (const ordering of orderings) {
    for (const maxInFlight of inFlights) subjects.push({ kind: "eventsink", ordering, maxInFlight });
  }
  return subjects;
}

/** The Benthos subjects: 256 in flight, and as many as eventsink's defaults allow. */
export function benthosSubjects(): Subject[] {
  return [{ kind: "benthos", maxInFlight: 256 }, {
    kind: "benthos",
    maxInFlight: EVENTSINK_DEFAULTS.maxInFlight,
  }];
}

/** The in-flight settings of the lean store's ceiling rows: eventsink's default and the most measured. */
export const LOAD_CONCURRENCIES: readonly number[] = [EVENTSINK_DEFAULTS.maxInFlight, 256];

/** Body bytes the load generator POSTs per size class: about the backlog's mean record. */
export const LOAD_BYTES: Record<SizeClass, number> = { fixtures: 1_536, "10k": 10_240 };

/** A stable key for grouping repeated runs of one spec. */
export function specKey(spec: RunSpec): string {
  return `${spec.size}|${spec.subject.kind === "consume" ? "-" : spec.latencyMs}|${
    subjectName(spec.subject)
  }`;
}
