import { createHistogram, type Histogram } from "./exposition.ts";
import type { Outcome } from "../delivery/outcome.ts";

/**
 * What the delivery attempts say about the EventStore. `unknown` until the first attempt: an idle sink
 * has not asked it anything yet. `failing` holds the first failure since the last success.
 */
export type StoreHealth =
  | { kind: "unknown" }
  /** `at`: the latest answer about a message (a delivery or a rejection). */
  | { kind: "ok"; at: number }
  | { kind: "failing"; since: number; outcome: Extract<Outcome, { kind: "retry" | "config-fault" }> };

/** Counts for the metrics, over every attempt since start. */
export interface AttemptStats {
  /** Requests by status class ("2xx" … "5xx"), "none" for no answer (timeout, connection error). */
  requestsByClass: Record<string, number>;
  /** Attempts that failed transiently or on a configuration fault; each is retried. */
  retries: number;
  /** Time of the last 2xx (milliseconds since the epoch). */
  lastDeliveredAt: number | undefined;
  /** Attempt durations in seconds. */
  duration: Histogram;
  /** OAuth2 tokens obtained from the token endpoint: the first one and every renewal. */
  tokens: number;
  /** Records taken as rejected because they failed alone while the EventStore worked (--poison-after). */
  poisoned: number;
}

/** Upper bounds of the request duration histogram, in seconds (the request timeout defaults to 30 s). */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * While some attempts fail, a success this recent still counts the EventStore as working: one message
 * failing for ever (answered 500 every time) should not make the whole sink look unready.
 */
export const SUCCESS_WINDOW_MS = 10_000;

/** Follows every delivery attempt (see `AttemptObserver`) for readiness and metrics. */
export interface AttemptLog {
  observe(outcome: Outcome, durationMs: number): void;
  /** The EventStore's answer to a probe: it tells health as an attempt does, but is not counted as one. */
  probed(outcome: Outcome): void;
  /** Milliseconds since the last delivery attempt was heard; Infinity before any. */
  quietFor(): number;
  /** A new OAuth2 token came from the token endpoint. */
  tokenObtained(): void;
  /** A record was taken as poison. */
  poisoned(): void;
  health(): StoreHealth;
  stats(): AttemptStats;
}

/** Creates an attempt log; `now` gives milliseconds since the epoch. */
export function createAttemptLog(now: () => number): AttemptLog {
  let lastSuccessAt: number | undefined;
  let lastAttemptAt = -Infinity;
  let failing: Extract<StoreHealth, { kind: "failing" }> | undefined;
  const note = (outcome: Outcome, at: number) => {
    if (outcome.kind === "delivered" || outcome.kind === "rejected") {
      // A rejection is an answer about the message: the EventStore is there and took our credentials.
      lastSuccessAt = at;
      failing = undefined;
    } else failing = { kind: "failing", since: failing?.since ?? at, outcome };
  };
  const stats: AttemptStats = {
    requestsByClass: {},
    retries: 0,
    lastDeliveredAt: undefined,
    duration: createHistogram(DURATION_BUCKETS),
    tokens: 0,
    poisoned: 0,
  };
  return {
    observe(outcome, durationMs) {
      const at = now();
      const statusClass = outcome.status === undefined ? "none" : `${Math.floor(outcome.status / 100)}xx`;
      stats.requestsByClass[statusClass] = (stats.requestsByClass[statusClass] ?? 0) + 1;
      stats.duration.observe(durationMs / 1000);
      if (outcome.kind === "delivered") stats.lastDeliveredAt = at;
      if (outcome.kind === "retry" || outcome.kind === "config-fault") stats.retries++;
      lastAttemptAt = at;
      note(outcome, at);
    },
    probed: (outcome) => note(outcome, now()),
    quietFor: () => now() - lastAttemptAt,
    tokenObtained() {
      stats.tokens++;
    },
    poisoned() {
      stats.poisoned++;
    },
    health() {
      if (failing !== undefined) {
        const recentSuccess = lastSuccessAt !== undefined && now() - lastSuccessAt < SUCCESS_WINDOW_MS;
        if (!recentSuccess) return failing;
      }
      return lastSuccessAt === undefined ? { kind: "unknown" } : { kind: "ok", at: lastSuccessAt };
    },
    stats: () => stats,
  };
}
