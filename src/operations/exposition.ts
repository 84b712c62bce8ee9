/**
 * The Prometheus text exposition format (version 0.0.4), kept small: metric families in, text out.
 * eventsink reads its numbers from snapshots when scraped, so this holds no state but histograms.
 */

/** The media type of the text format, for the Content-Type of /metrics. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Record<string, string>;

/** One line of a family: `name` may carry a suffix such as `_bucket` (histograms). */
export interface Sample {
  name: string;
  labels?: Labels;
  value: number;
}

/** A metric with its help text and type; a family may have no samples yet (e.g. nothing delivered). */
export interface MetricFamily {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  samples: Sample[];
}

/** Renders families in the text format: HELP and TYPE lines, then the samples. */
export function renderExposition(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      lines.push(`${sample.name}${formatLabels(sample.labels ?? {})} ${formatValue(sample.value)}`);
    }
  }
  return lines.join("\n") + "\n";
}

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** A histogram of observed values with fixed upper bounds (cumulative buckets, as Prometheus wants). */
export interface Histogram {
  observe(value: number): void;
  /** The `_bucket`, `_sum` and `_count` samples of the family `name`. */
  samples(name: string, labels?: Labels): Sample[];
}

/** Creates a histogram; `bounds` are the buckets' upper bounds in ascending order (+Inf is added). */
export function createHistogram(bounds: readonly number[]): Histogram {
  const counts = new Array<number>(bounds.length).fill(0);
  let sum = 0;
  let count = 0;
  return {
    observe(value) {
      const index = bounds.findIndex((bound) => value <= bound);
      if (index >= 0) counts[index]!++;
      sum += value;
      count++;
    },
    samples(name, labels = {}) {
      let cumulative = 0;
      const buckets = bounds.map((bound, i) => {
        cumulative += counts[i]!;
        return { name: `${name}_bucket`, labels: { ...labels, le: formatValue(bound) }, value: cumulative };
      });
      return [
        ...buckets,
        { name: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: count },
        { name: `${name}_sum`, labels, value: sum },
        { name: `${name}_count`, labels, value: count },
      ];
    },
  };
}
