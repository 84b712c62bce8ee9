import type { RetryPolicy } from "../delivery/backoff.ts";
import type { DeliveryResult } from "../delivery/deliver.ts";
import type { Present } from "../outward.ts";
import type { Logger } from "../log.ts";
import { type OutgoingRecord, recordFields, recordName, type SourceRecord } from "../record.ts";
import { deadLetterWriter } from "./dead_letter.ts";
import type { RejectedConfig } from "./policy.ts";

/** How a record ends; "held" stays uncommitted (and stops the sink). */
export type Ending = "delivered" | "dead-lettered" | "skipped" | "held";

/** Accounts for one delivered or rejected record; rejects only when `signal` aborts a dead-letter write. */
export type Settle = (record: SourceRecord, result: DeliveryResult, signal: AbortSignal) => Promise<Ending>;

/** Writes the dead letter of a rejected record; resolves once the broker acknowledged it. */
export type DeadLetterFn = (
  record: SourceRecord,
  rejected: Extract<DeliveryResult, { kind: "rejected" }>,
  signal: AbortSignal,
) => Promise<void>;

/** What happens to a rejected record (see `--on-rejected`). */
export type RejectedHandling =
  /** `note` replaces "--on-rejected=skip" in the skip log line (a dry run says why it skips). */
  | { policy: "skip" | "stop"; note?: string }
  | { policy: "dead-letter"; topic: string; write: DeadLetterFn };

/** The handling `--on-rejected` asks for; a dead letter is written with the producer's `publish`. */
export function rejectedHandling(
  options: { rejected: RejectedConfig; retry: RetryPolicy },
  deps: {
    publish: (topic: string, record: OutgoingRecord) => Promise<void>;
    log: Logger;
    sleep: (ms: number, signal: AbortSignal) => Promise<void>;
    version: string;
    present: Present;
  },
): RejectedHandling {
  const { rejected } = options;
  if (rejected.policy !== "dead-letter") return { policy: rejected.policy };
  const topic = rejected.deadLetterTopic;
  return {
    policy: "dead-letter",
    topic,
    write: deadLetterWriter({ ...deps, topic, policy: options.retry }, deps.version),
  };
}

/** Logs how each record ended, and writes the dead letter of a rejected one when the policy says so. */
export function createSettle(onRejected: RejectedHandling, log: Logger): Settle {
  return async (record, result, signal) => {
    if (result.kind === "tombstone") {
      log.info("Skipped a tombstone (a record without a value)", recordFields(record));
      return "skipped";
    }
    if (result.kind === "delivered") {
      log.debug("Delivered", { ...recordFields(record), status: result.status, attempts: result.attempts });
      return "delivered";
    }
    const fields = { ...recordFields(record), status: result.status, reason: result.reason };
    switch (onRejected.policy) {
      case "dead-letter":
        await onRejected.write(record, result, signal);
        log.warn("Wrote a rejected message to the dead-letter topic", {
          ...fields,
          deadLetterTopic: onRejected.topic,
        });
        return "dead-lettered";
      case "stop":
        log.error(
          `Stopping at ${recordName(record)}: the message was rejected and --on-rejected=stop; it stays ` +
            "uncommitted. Fix or remove it, or restart with --on-rejected=skip",
          fields,
        );
        return "held";
      case "skip":
        log.warn(`Skipped a rejected message (${onRejected.note ?? "--on-rejected=skip"})`, fields);
        return "skipped";
    }
  };
}
