/** Small statistics for the benchmark: pure functions over plain numbers. */

/** The value at quantile `q` (0–1) of ascending `sorted` values (nearest rank); NaN when empty. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** The median of `values` (mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const finite = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (finite.length === 0) return NaN;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 === 1 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

/** Median, smallest and largest of repeated measurements, NaNs left out. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Summarises repeated measurements of one figure. */
export function summarize(values: readonly number[]): Summary {
  const finite = values.filter((v) => !Number.isNaN(v));
  return {
    median: median(finite),
    min: finite.length ? Math.min(...finite) : NaN,
    max: finite.length ? Math.max(...finite) : NaN,
    n: finite.length,
  };
}

/** (max − min) ÷ median, as a fraction; 0 for a single value, NaN without values. */
export function relativeSpread(summary: Summary): number {
  if (summary.n === 0 || summary.median === 0) return NaN;
  return (summary.max - summary.min) / summary.median;
}
