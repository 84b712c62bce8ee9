/** Reading eventsink's HTTP endpoint in tests: plain GETs and single samples of /metrics. */

/** GETs `path` and returns status and body text. */
export async function get(
  base: string,
  path: string,
): Promise<{ status: number; body: string; type: string }> {
  const response = await fetch(`${base}${path}`);
  return {
    status: response.status,
    body: await response.text(),
    type: response.headers.get("content-type") ?? "",
  };
}

/**
 * The value of one series in a Prometheus text, named as it is written there, e.g.
 * `eventsink_records_delivered_total{topic="t"}`; undefined when there is no such line.
 */
export function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
