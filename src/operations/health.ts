import type { StoreHealth } from "./store_watch.ts";
import type { SinkPhase } from "../sink/status.ts";

/** An answer of /healthz or /readyz: ok or not, and why in a line (no message content, no secret). */
export interface Verdict {
  ok: boolean;
  reason: string;
}

/**
 * The consumer loop counts as wedged when KafkaJS has neither fetched, heartbeated nor (re)joined for
 * this long. It fetches every 100 ms even with every partition paused and heartbeats every 3 s,
 * and while a broker is away it goes on reconnecting, so only a stuck loop stays silent this long.
 */
export const WEDGED_AFTER_MS = 120_000;

/** Alive: the process answers, and the consumer loop shows signs of life (see WEDGED_AFTER_MS). */
export function liveness(view: { phase: SinkPhase; lastActivity: number | undefined }, now: number): Verdict {
  if (view.phase !== "consuming") return { ok: true, reason: view.phase };
  // Consuming implies the group was joined, which is activity; undefined only if nothing was ever seen.
  const silentMs = now - (view.lastActivity ?? 0);
  if (silentMs > WEDGED_AFTER_MS) {
    return {
      ok: false,
      reason: `the Kafka consumer loop has shown no sign of life for ${Math.round(silentMs / 1000)} s`,
    };
  }
  return { ok: true, reason: "consuming" };
}

/** Ready: consuming, with partitions assigned, and the EventStore not failing. */
export function readiness(
  view: { phase: SinkPhase; topic: string; partitions: number; store: StoreHealth },
): Verdict {
  switch (view.phase) {
    case "starting":
      return { ok: false, reason: "starting: connecting to Kafka and joining the consumer group" };
    case "stopping":
    case "stopped":
      return { ok: false, reason: "stopping" };
  }
  if (view.partitions === 0) {
    return {
      ok: false,
      reason: `no partition of ${view.topic} is assigned to this process (more consumers in the group ` +
        "than partitions, or a rebalance in progress)",
    };
  }
  if (view.store.kind === "failing") return { ok: false, reason: storeProblem(view.store) };
  const store = view.store.kind === "ok" ? "EventStore answering" : "EventStore not asked yet (no records)";
  return { ok: true, reason: `consuming ${view.partitions} partition(s) of ${view.topic}; ${store}` };
}

/** Why the EventStore counts as failing, in a line: the status, never the answer's body. */
export function storeProblem(store: Extract<StoreHealth, { kind: "failing" }>): string {
  const since = new Date(store.since).toISOString();
  const { outcome } = store;
  if (outcome.kind === "config-fault") {
    return `EventStore refuses requests since ${since} (answered ${outcome.status}): check ` +
      "--eventstore-url and credentials";
  }
  if (outcome.status !== undefined) return `EventStore failing since ${since} (answered ${outcome.status})`;
  // Without a status the reason is eventsink's own text (a timeout or a network error), not the store's.
  return `EventStore unreachable since ${since}: ${outcome.reason}`;
}
