/** Number and text formatting for the benchmark's report. Pure. */
import { relativeSpread, type Summary } from "./stats.ts";

export function rate(value: number): string {
  if (!Number.isFinite(value)) return value === Infinity ? "∞" : "—";
  return Math.round(value).toLocaleString("en-US");
}

export function spread(summary: Summary): string {
  if (summary.n === 0) return "—";
  if (summary.n === 1) return "1 run";
  return `${rate(summary.min)}–${rate(summary.max)} (±${percent(relativeSpread(summary) / 2)})`;
}

export function percent(value: number): string {
  return Number.isFinite(value) ? `${Math.round(value * 100)} %` : "—";
}

export function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "—";
}

export function mb(value: number): string {
  return Number.isFinite(value) ? value.toFixed(0) : "—";
}

export function latency(value: number): string {
  if (value === Infinity) return "> 5000 (not stored)";
  return Number.isFinite(value) ? value.toFixed(0) : "—";
}

export function kb(bytes: number | undefined): string {
  return bytes === undefined ? "?" : `${(bytes / 1024).toFixed(1)} KB`;
}

export function count(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "—";
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toLocaleString("en-US")} s`;
}

export function minutes(totalSeconds: number): string {
  const m = Math.floor(totalSeconds / 60);
  const s = Math.round(totalSeconds % 60);
  return m > 0 ? `${m} min ${s} s` : `${s} s`;
}

export function firstLine(text: string): string {
  return text.split("\n")[0] ?? "";
}
