import type { RetryPolicy } from "../delivery/backoff.ts";
import type { Logger } from "../log.ts";
import type { Present } from "../outward.ts";
import { type HeaderValue, type OutgoingRecord, recordFields, type SourceRecord } from "../record.ts";
import { retryUntilDone } from "../delivery/retry.ts";
import { abortable } from "../async.ts";

/** Our context headers all start with this; a redrive drops old ones before adding new ones. */
export const DEAD_LETTER_HEADER_PREFIX = "eventsink.";

/** Why and when a record was rejected. */
export interface Rejection {
  /** As logged: without the record's content. */
  reason: string;
  /** The EventStore's diagnostics in full, if it gave any. */
  diagnostics?: string;
  status: number | undefined;
  attempts: number;
  at: Date;
  version: string;
}

/** Longest reason and diagnostics header (after masking): a dead letter is not the place for a body. */
const MAX_HEADER_CHARS = 1_000;

/**
 * The dead letter of a rejected record: the record's own key, value and headers, byte for byte, plus
 * `eventsink.*` headers saying where it came from and why it was rejected, the texts presented as every
 * outward text is (masked, neutralised, cut). Pure.
 */
export function deadLetter(record: SourceRecord, rejection: Rejection, present: Present): OutgoingRecord {
  const headers: Record<string, HeaderValue> = {};
  for (const [name, value] of Object.entries(record.headers)) {
    if (!name.toLowerCase().startsWith(DEAD_LETTER_HEADER_PREFIX)) headers[name] = value;
  }
  const context: Record<string, string | undefined> = {
    "source.topic": record.topic,
    "source.partition": String(record.partition),
    "source.offset": String(record.offset),
    "source.timestamp": record.timestamp,
    "error.status": rejection.status === undefined ? undefined : String(rejection.status),
    "error.reason": present(rejection.reason, MAX_HEADER_CHARS),
    "error.diagnostics": rejection.diagnostics && present(rejection.diagnostics, MAX_HEADER_CHARS),
    "error.time": rejection.at.toISOString(),
    "error.attempts": String(rejection.attempts),
    "version": rejection.version,
  };
  for (const [name, value] of Object.entries(context)) {
    if (value !== undefined) headers[DEAD_LETTER_HEADER_PREFIX + name] = value;
  }
  return { key: record.key, value: record.value, headers };
}

/** What writing dead letters needs. */
export interface DeadLetterDeps {
  topic: string;
  publish: (topic: string, record: OutgoingRecord) => Promise<void>;
  policy: RetryPolicy;
  log: Logger;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Presents the reason and diagnostics headers (see outward.ts). */
  present: Present;
}

/**
 * Writes a dead letter, retrying with backoff until the broker acknowledges it: the source offset may
 * only be committed after that. Rejects only when `signal` aborts, or on an error that is not Kafka's.
 */
export async function writeDeadLetter(
  deps: DeadLetterDeps,
  letter: { record: SourceRecord; rejection: Rejection },
  signal: AbortSignal,
): Promise<void> {
  const message = deadLetter(letter.record, letter.rejection, deps.present);
  await retryUntilDone(deps, async (attempt) => {
    try {
      await abortable(deps.publish(deps.topic, message), signal);
      return { kind: "done", value: undefined };
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      // Anything but a KafkaJS error is a bug, not a broker condition to wait out.
      if (!(error instanceof Error) || !error.name.startsWith("KafkaJS")) throw error;
      const fields = {
        ...recordFields(letter.record),
        attempt,
        deadLetterTopic: deps.topic,
        error: error.message,
      };
      return { kind: "again", failure: { message: "Cannot write the dead letter, will retry", fields } };
    }
  }, signal);
}

/** A DeadLetterFn for the sink: writes to `topic` with `writeDeadLetter`, stamping the rejection. */
export function deadLetterWriter(deps: DeadLetterDeps, version: string) {
  return (
    record: SourceRecord,
    rejected: { reason: string; diagnostics?: string; status: number | undefined; attempts: number },
    signal: AbortSignal,
  ) => writeDeadLetter(deps, { record, rejection: { ...rejected, at: new Date(), version } }, signal);
}
