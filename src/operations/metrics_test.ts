/** The Prometheus exposition and eventsink's metric set, checked by hand and by promtool. */
import assert from "node:assert/strict";
import { createAttemptLog } from "./store_watch.ts";
import { createHistogram, renderExposition } from "./exposition.ts";
import { metricFamilies, type MetricsSnapshot } from "./metrics.ts";
import { VERSIONS } from "../version.ts";
import { promtoolCheckMetrics } from "../../tests/support/promtool.ts";

Deno.test("exposition: HELP, TYPE, labels escaped, special values", () => {
  const text = renderExposition([{
    name: "x_total",
    help: "A help\\text\nover two lines.",
    type: "counter",
    samples: [
      { name: "x_total", labels: { topic: 'a"b\\c\nd' }, value: 3 },
      { name: "x_total", value: Infinity },
      { name: "x_total", value: NaN },
    ],
  }]);
  assert.equal(
    text,
    [
      "# HELP x_total A help\\\\text\\nover two lines.",
      "# TYPE x_total counter",
      'x_total{topic="a\\"b\\\\c\\nd"} 3',
      "x_total +Inf",
      "x_total NaN",
      "",
    ].join("\n"),
  );
});

Deno.test("exposition: histogram buckets are cumulative, with +Inf, sum and count", () => {
  const histogram = createHistogram([0.1, 1]);
  for (const value of [0.05, 0.1, 0.5, 2]) histogram.observe(value);
  assert.deepEqual(histogram.samples("d_seconds", { a: "b" }), [
    { name: "d_seconds_bucket", labels: { a: "b", le: "0.1" }, value: 2 },
    { name: "d_seconds_bucket", labels: { a: "b", le: "1" }, value: 3 },
    { name: "d_seconds_bucket", labels: { a: "b", le: "+Inf" }, value: 4 },
    { name: "d_seconds_sum", labels: { a: "b" }, value: 2.65 },
    { name: "d_seconds_count", labels: { a: "b" }, value: 4 },
  ]);
});

function snapshot(): MetricsSnapshot {
  const attempts = createAttemptLog(() => 1_700_000_000_000);
  attempts.observe({ kind: "retry", status: 503, reason: "EventStore answered 503" }, 12);
  attempts.observe({ kind: "retry", reason: "Cannot reach the EventStore: refused" }, 3);
  attempts.observe({ kind: "delivered", status: 202 }, 40);
  attempts.observe({ kind: "rejected", status: 422, reason: "EventStore answered 422" }, 20);
  return {
    topic: "fhir",
    counts: { consumed: 3, delivered: 1, deadLettered: 1, skipped: 1, unfinished: 0, deleted: 4, retries: 2 },
    partitions: [
      { partition: 0, committed: 2, logEnd: 5, lag: 3, inFlight: 1 },
      { partition: 1, committed: undefined, logEnd: undefined, lag: undefined, inFlight: 0 },
    ],
    attempts: attempts.stats(),
    ready: true,
    versions: VERSIONS,
  };
}

Deno.test("metrics: every family with the values of the snapshot", () => {
  const text = renderExposition(metricFamilies(snapshot()));
  const expected = [
    'eventsink_records_consumed_total{topic="fhir"} 3',
    'eventsink_records_delivered_total{topic="fhir"} 1',
    'eventsink_records_dead_lettered_total{topic="fhir"} 1',
    'eventsink_records_skipped_total{topic="fhir"} 1',
    'eventsink_records_deleted_total{topic="fhir"} 4',
    'eventsink_eventstore_requests_total{status_class="2xx"} 1',
    'eventsink_eventstore_requests_total{status_class="4xx"} 1',
    'eventsink_eventstore_requests_total{status_class="5xx"} 1',
    'eventsink_eventstore_requests_total{status_class="none"} 1',
    'eventsink_eventstore_request_duration_seconds_bucket{le="0.005"} 1',
    'eventsink_eventstore_request_duration_seconds_bucket{le="0.025"} 3',
    'eventsink_eventstore_request_duration_seconds_bucket{le="0.05"} 4',
    "eventsink_eventstore_request_duration_seconds_count 4",
    "eventsink_delivery_retries_total 2",
    "eventsink_last_delivery_timestamp_seconds 1700000000",
    'eventsink_records_in_flight{topic="fhir",partition="0"} 1',
    'eventsink_records_in_flight{topic="fhir",partition="1"} 0',
    'eventsink_committed_offset{topic="fhir",partition="0"} 2',
    'eventsink_consumer_lag{topic="fhir",partition="0"} 3',
    "eventsink_ready 1",
  ];
  const lines = text.split("\n");
  for (const line of expected) assert.ok(lines.includes(line), `missing: ${line}\n${text}`);
  // A partition that has no committed offset or lag yet has no sample, rather than a made-up 0.
  assert.ok(!text.includes('eventsink_committed_offset{topic="fhir",partition="1"}'));
  assert.ok(!text.includes('eventsink_consumer_lag{topic="fhir",partition="1"}'));
  assert.match(text, new RegExp(`eventsink_build_info\\{eventsink="${VERSIONS.eventsink}",deno="[^"]+",v8=`));
});

Deno.test("metrics: promtool finds nothing to complain about, also before anything happened", async () => {
  const empty: MetricsSnapshot = {
    ...snapshot(),
    counts: { consumed: 0, delivered: 0, deadLettered: 0, skipped: 0, unfinished: 0, deleted: 0, retries: 0 },
    partitions: [],
    attempts: createAttemptLog(Date.now).stats(),
    ready: false,
  };
  for (const s of [snapshot(), empty]) {
    const result = await promtoolCheckMetrics(renderExposition(metricFamilies(s)));
    assert.ok(result.ok && result.output.trim() === "", `promtool: ${result.output}`);
  }
});
