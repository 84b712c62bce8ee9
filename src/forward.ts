import type { Config } from "./config.ts";
import { post } from "./delivery.ts";
import type { Logger } from "./log.ts";
import type { Outcome } from "./outcome.ts";
import { recordFields, type SourceRecord } from "./record.ts";
import { buildRequest } from "./request.ts";
import { alarmThrottle, type Settled, settleRecord } from "./settle.ts";
import { sleep } from "./sleep.ts";

/** A configuration fault is logged at most this often while it lasts. */
const ALARM_INTERVAL_MS = 60_000;

/**
 * Settles records against the EventStore: a record that can never be a valid request is rejected
 * locally, without a POST; every other one is posted until delivered or rejected.
 */
export function createForwarder(
  config: Config,
  log: Logger,
  observe?: (outcome: Outcome, record: SourceRecord) => void,
) {
  const shouldAlarm = alarmThrottle(ALARM_INTERVAL_MS, Date.now);
  return (record: SourceRecord, signal: AbortSignal): Promise<Settled> => {
    const request = buildRequest(record, config.eventstoreUrl);
    if (request.kind === "tombstone") return Promise.resolve({ kind: "tombstone" });
    if (request.kind === "invalid") {
      return Promise.resolve({ kind: "rejected", status: undefined, reason: request.reason, attempts: 0 });
    }
    return settleRecord({
      attempt: (attemptSignal) => post(request, attemptSignal, { timeoutMs: config.requestTimeoutMs }),
      policy: config.retry,
      log: log.child(recordFields(record)),
      sleep,
      now: Date.now,
      shouldAlarm,
      observe: observe && ((outcome) => observe(outcome, record)),
    }, signal);
  };
}
