import type { Logger } from "../log.ts";
import { recordFields, recordName } from "../record.ts";
import type { Deliver } from "../delivery/deliver.ts";
import { localVerdict } from "../delivery/request.ts";
import type { RejectedHandling } from "../settle/settle.ts";

/** A dry run skips what it would reject, and says so; it writes no dead letter. */
export const DRY_RUN_REJECTED: RejectedHandling = { policy: "skip", note: "dry run: it would not be sent" };

/**
 * Delivers records without sending them: each is checked as a delivery would check it before a POST
 * (a value, valid JSON when its Content-Type says JSON, a usable Content-Type) and counted as
 * would-be-sent (delivered), or rejected locally. Keeps the largest value seen, for the summary.
 */
export function createDryRun(eventstoreUrl: string, log: Logger) {
  let largest: { bytes: number; at: string } | undefined;
  const deliver: Deliver = (record) => {
    const verdict = localVerdict(record, eventstoreUrl);
    if (verdict.kind !== "request") return Promise.resolve(verdict);
    const bytes = verdict.body.length;
    if (largest === undefined || bytes > largest.bytes) largest = { bytes, at: recordName(record) };
    log.debug("Dry run: would send", {
      ...recordFields(record),
      contentType: verdict.headers["content-type"],
      bytes,
    });
    return Promise.resolve({ kind: "delivered", status: 0, attempts: 0 });
  };
  return { deliver, largest: () => largest };
}
