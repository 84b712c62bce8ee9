import { authorized, type TokenSource } from "./tokens.ts";
import type { Config } from "../config/parse.ts";
import { post, type PostRequest, type Send } from "./sender.ts";
import type { Logger } from "../log.ts";
import { recordFields, type SourceRecord } from "../record.ts";
import { buildRequest } from "./request.ts";
import type { Outcome } from "./outcome.ts";
import { alarmThrottle, type Settled, settleRecord } from "./retry.ts";
import { sleep } from "../async.ts";

/** A configuration fault is logged at most this often while it lasts. */
const ALARM_INTERVAL_MS = 60_000;

/** How the forwarder reaches the EventStore. */
export interface ForwarderDeps {
  /** Bearer tokens; none sent without. */
  tokens?: TokenSource;
  /** Sends the POSTs (see createSender). */
  send: Send;
  /** Hears the outcome and duration of every attempt, and its record (for health, metrics and progress). */
  observe?: (outcome: Outcome, durationMs: number, record: SourceRecord) => void;
}

/**
 * Settles records against the EventStore: a record that can never be a valid request is rejected
 * locally, without a POST; every other one is posted until delivered or rejected.
 */
export function createForwarder(config: Config, log: Logger, deps: ForwarderDeps) {
  const shouldAlarm = alarmThrottle(ALARM_INTERVAL_MS, Date.now);
  const options = { timeoutMs: config.requestTimeoutMs, send: deps.send };
  const { tokens, observe } = deps;
  const attempt = (request: PostRequest) => (signal: AbortSignal) =>
    authorized(
      tokens,
      (auth) => post({ ...request, headers: { ...request.headers, ...auth } }, signal, options),
      signal,
    );
  return (record: SourceRecord, signal: AbortSignal): Promise<Settled> => {
    const request = buildRequest(record, config.eventstoreUrl, { headers: config.eventstoreHeaders });
    if (request.kind === "tombstone") return Promise.resolve({ kind: "tombstone" });
    if (request.kind === "invalid") {
      return Promise.resolve({ kind: "rejected", status: undefined, reason: request.reason, attempts: 0 });
    }
    return settleRecord({
      attempt: attempt(request),
      policy: config.retry,
      log: log.child(recordFields(record)),
      sleep,
      now: Date.now,
      shouldAlarm,
      observe: observe && ((outcome, durationMs) => observe(outcome, durationMs, record)),
    }, signal);
  };
}
