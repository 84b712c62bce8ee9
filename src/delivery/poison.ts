import type { Outcome } from "./outcome.ts";

/**
 * A poison record fails transiently on every attempt while the EventStore works: the real store answers
 * 500 to a reused Bundle.id for ever. After `attempts` attempts over at least `afterMs`, with evidence that
 * the store works, such a record is treated as rejected. An outage fails everything, the probe included, so
 * it never gives that evidence, however long it lasts.
 */
export interface PoisonPolicy {
  attempts: number;
  afterMs: number;
}

/** How often, at most, the EventStore is probed; a probe's outcome stands that long. */
export const PROBE_GAP_MS = 10_000;

/** Evidence that the EventStore works: answers about messages, and a light authenticated probe. */
export interface StoreEvidence {
  /** The EventStore answered about a message (delivered or rejected it). */
  answered(): void;
  /** Whether the EventStore answered about a message after `since` (no probe). */
  answeredSince(since: number): boolean;
  /**
   * Whether the EventStore worked after `since`: it answered about a message, or a probe succeeded. Probes
   * (shared, at most every PROBE_GAP_MS) only when no answer says so.
   */
  worksSince(since: number): Promise<boolean>;
  /** Probes now unless one ran within PROBE_GAP_MS; gives that probe's outcome. */
  probe(): Promise<Outcome>;
}

/** Whether a failed attempt is of the kind a poison record gives: a 5xx, a timeout or a connection error. */
export function isPoisonFailure(outcome: Outcome): boolean {
  // 408, 425 and 429 ask to come back later: the store is busy, not refusing this record.
  return outcome.kind === "retry" && (outcome.status === undefined || outcome.status >= 500);
}

/** Whether a record failing that way is past the bound and so a poison candidate. */
export function pastPoisonBound(
  policy: PoisonPolicy | undefined,
  attempts: number,
  failingMs: number,
): boolean {
  return policy !== undefined && attempts >= policy.attempts && failingMs >= policy.afterMs;
}

/** Collects the evidence; `probe` asks the EventStore something light with eventsink's credentials. */
export function createStoreEvidence(probe: () => Promise<Outcome>, now: () => number): StoreEvidence {
  let answeredAt = -Infinity;
  let last: { at: number; outcome: Outcome } | undefined;
  let running: Promise<Outcome> | undefined;
  const works = (outcome: Outcome) => outcome.kind === "delivered";
  const probeNow = () => {
    const at = now();
    return running ??= probe().then((outcome) => {
      last = { at, outcome };
      return outcome;
    }).finally(() => (running = undefined));
  };
  const evidence: StoreEvidence = {
    answered() {
      answeredAt = now();
    },
    answeredSince: (since) => answeredAt > since,
    async worksSince(since) {
      if (answeredAt > since) return true;
      const recent = last !== undefined && now() - last.at < PROBE_GAP_MS ? last : undefined;
      if (recent) return recent.at > since && works(recent.outcome);
      return works(await evidence.probe());
    },
    probe() {
      if (last !== undefined && now() - last.at < PROBE_GAP_MS) return Promise.resolve(last.outcome);
      return probeNow();
    },
  };
  return evidence;
}
