import type { Logger } from "../log.ts";
import { recordFields, recordName } from "../record.ts";
import { buildRequest } from "../delivery/request.ts";
import type { RejectedHandling, SettleFn } from "../sink/sink.ts";

/** A dry run skips what it would reject, and says so; it writes no dead letter. */
export const DRY_RUN_REJECTED: RejectedHandling = { policy: "skip", note: "dry run: it would not be sent" };

/**
 * Settles records without sending them: each is checked as a delivery would check it before a POST
 * (a value, valid JSON when its Content-Type says JSON, a usable Content-Type) and counted as
 * would-be-sent (delivered), or rejected locally. Keeps the largest value seen, for the summary.
 */
export function createDryRun(eventstoreUrl: string, log: Logger) {
  let largest: { bytes: number; at: string } | undefined;
  const settle: SettleFn = (record) => {
    const request = buildRequest(record, eventstoreUrl);
    if (request.kind === "tombstone") return Promise.resolve({ kind: "tombstone" });
    if (request.kind === "invalid") {
      return Promise.resolve({ kind: "rejected", status: undefined, reason: request.reason, attempts: 0 });
    }
    const bytes = request.body.length;
    if (largest === undefined || bytes > largest.bytes) largest = { bytes, at: recordName(record) };
    log.debug("Dry run: would send", {
      ...recordFields(record),
      contentType: request.headers["content-type"],
      bytes,
    });
    return Promise.resolve({ kind: "delivered", status: 0, attempts: 0 });
  };
  return { settle, largest: () => largest };
}
