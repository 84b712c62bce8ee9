import type { AttemptStats } from "./store_watch.ts";
import type { MetricFamily, Sample } from "./exposition.ts";
import type { PartitionProgress } from "./lag.ts";
import type { Counts } from "../sink/status.ts";
import type { Versions } from "../version.ts";

/** Everything /metrics shows, read at scrape time. */
export interface MetricsSnapshot {
  topic: string;
  counts: Counts;
  partitions: PartitionProgress[];
  attempts: AttemptStats;
  ready: boolean;
  versions: Versions;
}

/** eventsink's metrics (listed in README, "Metrics"), named after Prometheus's conventions. */
export function metricFamilies(snapshot: MetricsSnapshot): MetricFamily[] {
  const { topic, counts, attempts, versions } = snapshot;
  const byTopic = (name: string, help: string, value: number) => topicCounter(topic, name, help, value);
  const byPartition = (name: string, help: string, value: (p: PartitionProgress) => number | undefined) =>
    partitionGauge(snapshot, name, help, value);
  const durationName = "eventsink_eventstore_request_duration_seconds";
  return [
    {
      name: "eventsink_build_info",
      help: "Versions of eventsink and of what it runs on; always 1.",
      type: "gauge",
      samples: [{ name: "eventsink_build_info", labels: { ...versions }, value: 1 }],
    },
    byTopic("eventsink_records_consumed_total", "Records taken from Kafka for delivery.", counts.consumed),
    byTopic("eventsink_records_delivered_total", "Records the EventStore accepted (2xx).", counts.delivered),
    byTopic(
      "eventsink_records_dead_lettered_total",
      "Rejected records written to the dead-letter topic.",
      counts.deadLettered,
    ),
    byTopic(
      "eventsink_records_skipped_total",
      "Records skipped: rejected under --on-rejected=skip, and tombstones.",
      counts.skipped,
    ),
    byTopic(
      "eventsink_records_deleted_total",
      "Records Kafka deleted (retention) before eventsink delivered them: lost to this sink, each range " +
        "named in a warning.",
      counts.deleted,
    ),
    {
      name: "eventsink_eventstore_requests_total",
      help: "POSTs to the EventStore by status class; none: no answer (timeout or connection error).",
      type: "counter",
      samples: Object.entries(attempts.requestsByClass).sort(([a], [b]) => a.localeCompare(b)).map((
        [statusClass, value],
      ) => ({ name: "eventsink_eventstore_requests_total", labels: { status_class: statusClass }, value })),
    },
    {
      name: durationName,
      help: "Time of one POST to the EventStore, answer included.",
      type: "histogram",
      samples: attempts.duration.samples(durationName),
    },
    single(
      "eventsink_delivery_retries_total",
      "Delivery attempts that failed transiently or on a configuration fault (each is retried unless its " +
        "record is then given up on or taken as poison).",
      "counter",
      attempts.retries,
    ),
    single(
      "eventsink_records_poisoned_total",
      "Records taken as rejected because they failed with 5xx or timeouts while the EventStore answered " +
        "others (--poison-after); each is also dead-lettered, skipped or stops eventsink.",
      "counter",
      attempts.poisoned,
    ),
    single(
      "eventsink_oauth_tokens_total",
      "OAuth2 tokens obtained from the token endpoint: the first one and every renewal.",
      "counter",
      attempts.tokens,
    ),
    {
      name: "eventsink_last_delivery_timestamp_seconds",
      help: "When the EventStore last accepted a record (Unix time); absent until it first did.",
      type: "gauge",
      samples: attempts.lastDeliveredAt === undefined ? [] : [{
        name: "eventsink_last_delivery_timestamp_seconds",
        value: attempts.lastDeliveredAt / 1000,
      }],
    },
    byPartition(
      "eventsink_records_in_flight",
      "Records of an assigned partition taken but not yet accounted for.",
      (p) => p.inFlight,
    ),
    byPartition(
      "eventsink_committed_offset",
      "The offset last committed for an assigned partition (the next record to read).",
      (p) => p.committed,
    ),
    byPartition(
      "eventsink_consumer_lag",
      "Records of an assigned partition from the first one not yet accounted for to the log end.",
      (p) => p.lag,
    ),
    single(
      "eventsink_ready",
      "1 when /readyz answers 200 (consuming, partitions assigned, EventStore not failing), else 0.",
      "gauge",
      snapshot.ready ? 1 : 0,
    ),
  ];
}

function topicCounter(topic: string, name: string, help: string, value: number): MetricFamily {
  return { name, help, type: "counter", samples: [{ name, labels: { topic }, value }] };
}

function partitionGauge(
  snapshot: MetricsSnapshot,
  name: string,
  help: string,
  value: (p: PartitionProgress) => number | undefined,
): MetricFamily {
  const samples = snapshot.partitions.flatMap((p): Sample[] => {
    const v = value(p);
    return v === undefined
      ? []
      : [{ name, labels: { topic: snapshot.topic, partition: String(p.partition) }, value: v }];
  });
  return { name, help, type: "gauge", samples };
}

/** A family of one sample without labels. */
function single(name: string, help: string, type: MetricFamily["type"], value: number): MetricFamily {
  return { name, help, type, samples: [{ name, value }] };
}
