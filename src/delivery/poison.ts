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

/** Evidence that the EventStore works: messages it stored, and a light authenticated probe. */
export interface StoreEvidence {
  /** The EventStore stored a message (answered 2xx). */
  stored(): void;
  /** Whether the EventStore stored a message after `since` (no probe). */
  storedSince(since: number): boolean;
  /** A record began failing with 5xx or timeouts; the returned function says its delivery ended. */
  failing(): () => void;
  /**
   * Whether the EventStore worked after `since`: it stored a message, or — while no other record fails — a
   * probe succeeded. Probes (shared, at most every PROBE_GAP_MS) only when no stored message says so.
   */
  worksSince(since: number): Promise<boolean>;
  /** Probes now unless one ran within PROBE_GAP_MS; gives that probe's outcome. */
  probe(): Promise<Outcome>;
}

/**
 * What the real store answers (500) when its database cannot write, whatever the message: PostgreSQL
 * read-only (seen with hops-eventstore) or out of disk (PostgreSQL's own texts). Such a failure is the
 * store's, never one record's, even when that record is the only one trying.
 */
const STORE_CANNOT_WRITE = [
  /cannot execute \w+ in a read-only transaction/,
  /could not extend file/,
  /No space left on device/,
];

/**
 * What the real store answers (500) when a record's insert breaks a unique constraint (a reused Bundle.id):
 * the database took the write far enough to check it against what is stored, so the store works. A copy that
 * raced its own first attempt gets it once; the next attempt finds the message stored.
 */
const BREAKS_WHAT_IS_STORED = /duplicate key value violates unique constraint/;

/** What the store said of a failed attempt: its diagnostics, else eventsink's reason. */
function saidOf(outcome: Extract<Outcome, { kind: "retry" }>): string {
  return outcome.diagnostics ?? outcome.reason;
}

/** Whether a failed attempt is of the kind a poison record gives: a 5xx, a timeout or a connection error. */
export function isPoisonFailure(outcome: Outcome): boolean {
  // 408, 425 and 429 ask to come back later: the store is busy, not refusing this record.
  if (outcome.kind !== "retry" || (outcome.status !== undefined && outcome.status < 500)) return false;
  const said = saidOf(outcome);
  return !STORE_CANNOT_WRITE.some((text) => text.test(said));
}

/** Whether a failed attempt itself says the store works and this record conflicts with what it stored. */
export function conflictsWithStored(outcome: Outcome): boolean {
  return outcome.kind === "retry" && BREAKS_WHAT_IS_STORED.test(saidOf(outcome));
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
  let storedAt = -Infinity;
  let failingRecords = 0;
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
    stored() {
      storedAt = now();
    },
    storedSince: (since) => storedAt > since,
    failing() {
      failingRecords++;
      let ended = false;
      return () => {
        if (!ended) failingRecords--;
        ended = true;
      };
    },
    async worksSince(since) {
      if (storedAt > since) return true;
      // Several records failing and none stored is the store's fault, whatever its search answers: a
      // PostgreSQL that cannot write (disk full, read-only) still serves the probe.
      if (failingRecords > 1) return false;
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
