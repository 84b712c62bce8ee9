import { createAttemptSignals } from "./attempt_signals.ts";
import { authorized, createTokenSource, type TokenSource } from "./tokens.ts";
import type { RetryPolicy } from "./backoff.ts";
import type { Outcome } from "./outcome.ts";
import {
  conflictsWithStored,
  createStoreEvidence,
  isPoisonFailure,
  pastPoisonBound,
  type StoreEvidence,
} from "./poison.ts";
import { localVerdict } from "./request.ts";
import { createRequestWaits, isUnknownRequest } from "./responses.ts";
import { type RetryDeps, retryUntilDone } from "./retry.ts";
import { createEventStoreClient, createSender, post, probeSearch } from "./sender.ts";
import type { Send } from "./send.ts";
import { formatDuration } from "../duration.ts";
import { recordFields, type SourceRecord } from "../record.ts";
import { lazyChild, type Logger } from "../log.ts";
import type { EventStoreCredentials } from "../security/credentials.ts";
import type { TlsMaterial } from "../security/tls_files.ts";
import { eitherSignal, sleep } from "../async.ts";

/**
 * How a record's delivery ended: accepted; refused for good (by the EventStore, locally, or after giving
 * up); or a tombstone, which is no message at all and is skipped whatever the policy.
 */
export type DeliveryResult =
  | { kind: "delivered"; status: number; attempts: number }
  /** `reason` as logged; `diagnostics`, the EventStore's text in full, for the dead letter only. */
  | { kind: "rejected"; status: number | undefined; reason: string; diagnostics?: string; attempts: number }
  | { kind: "tombstone" };

/**
 * Delivers one record: resolves once delivered or rejected; rejects only when `signal` aborts (everything,
 * the POST in flight too) or `waits` aborts (a stop: the waits before and between attempts, not a POST).
 */
export type Deliver = (
  record: SourceRecord,
  signal: AbortSignal,
  waits?: AbortSignal,
) => Promise<DeliveryResult>;

/** The settings a delivery reads. */
export interface DeliveryOptions {
  /** The EventStore's base URL. */
  eventstoreUrl: string;
  /** Extra headers for every POST (--eventstore-headers). */
  eventstoreHeaders: Record<string, string>;
  /** How long one POST may wait for its answer. */
  requestTimeoutMs: number;
  retry: RetryPolicy;
  /** Whether a response waits while this process delivers the message it answers (not --ordering none). */
  responsesWait: boolean;
}

/** How deliveries reach the EventStore. */
export interface DeliveryDeps {
  log: Logger;
  /** Bearer tokens; none sent without. */
  tokens?: TokenSource;
  /** Sends the POSTs (see createSender). */
  send: Send;
  /** Hears the outcome and duration of every attempt, and its record (for health, metrics and progress). */
  observe?: (outcome: Outcome, durationMs: number, record: SourceRecord) => void;
  /** Whether the EventStore works for others, which tells a poison record from an outage. */
  evidence?: StoreEvidence;
  /** A record was taken as poison. */
  onPoison?: () => void;
}

/** A configuration fault is logged at most this often while it lasts. */
const ALARM_INTERVAL_MS = 60_000;

/**
 * Delivers records to the EventStore: a record that can never be a valid request is rejected locally,
 * without a POST; every other one is posted until delivered or rejected.
 */
export function createDelivery(options: DeliveryOptions, deps: DeliveryDeps): Deliver {
  const shouldAlarm = alarmThrottle(ALARM_INTERVAL_MS, Date.now);
  const postOptions = { signals: createAttemptSignals(options.requestTimeoutMs), send: deps.send };
  const { log, tokens, observe, evidence, onPoison } = deps;
  const requestWaits = createRequestWaits();
  return async (record, signal, waits) => {
    const wait = (ms: number, s: AbortSignal) => sleep(ms, eitherSignal(s, waits));
    const verdict = localVerdict(record, options.eventstoreUrl, { headers: options.eventstoreHeaders });
    if (verdict.kind !== "request") return verdict;
    const { id, answers } = verdict.refs;
    const ended = requestWaits.taken(id);
    try {
      // A response waits for its request when this process is delivering that now.
      if (answers !== undefined && options.responsesWait) {
        await requestWaits.before(answers, options.retry.responseWaitMs ?? 0, (ms) => wait(ms, signal));
      }
      return await deliverWithRetries({
        attempt: (signal) =>
          authorized(
            tokens,
            // Without a token the request goes as built (no copy of it per attempt).
            (auth) => post(withHeaders(verdict, auth), signal, postOptions),
            signal,
          ),
        policy: options.retry,
        log: lazyChild(log, () => recordFields(record)),
        sleep: wait,
        now: Date.now,
        shouldAlarm,
        observe: observe && ((outcome, durationMs) => observe(outcome, durationMs, record)),
        evidence,
        onPoison,
        answers,
      }, signal);
    } finally {
      ended();
    }
  };
}

/** `request` with `extra` headers added; `request` itself when there are none. */
function withHeaders<R extends { headers: Record<string, string> }>(
  request: R,
  extra: Record<string, string>,
): R {
  for (const _ in extra) return { ...request, headers: { ...request.headers, ...extra } };
  return request;
}

/** How a delivery that made attempts ended. */
type Attempts = Extract<DeliveryResult, { kind: "delivered" | "rejected" }>;

/** What delivering a record with retries needs; all I/O comes in, so tests can drive time and answers. */
export interface DeliverWithRetriesDeps extends RetryDeps {
  /** One delivery attempt. */
  attempt: (signal: AbortSignal) => Promise<Outcome>;
  policy: RetryPolicy;
  now: () => number;
  /** Decides whether a configuration fault is logged now; shared so that N partitions do not log N times. */
  shouldAlarm: () => boolean;
  /** Hears the outcome of every attempt and how long it took (for health and metrics). */
  observe?: (outcome: Outcome, durationMs: number) => void;
  /** Whether the EventStore works for others; without it no record is taken as poison. */
  evidence?: StoreEvidence;
  /** A record was taken as poison (for the metric). */
  onPoison?: () => void;
  /** The message id the record answers, when it is a response. */
  answers?: string;
}

/**
 * Attempts delivery until the record is delivered or rejected. Transient failures and configuration
 * faults are retried with backoff for as long as it takes (or until the give-up time, for transient
 * ones); rejects only when `signal` aborts, leaving the record unaccounted.
 */
export function deliverWithRetries(deps: DeliverWithRetriesDeps, signal: AbortSignal): Promise<Attempts> {
  const firstAt = deps.now();
  // A record that met a configuration fault is never given up on, even when its failures alternate with
  // transient ones: a TLS refusal, for one, often shows as a dropped connection on the next attempt.
  let configFault = false;
  const tally: PoisonTally = { attempts: 0, since: undefined };
  return retryUntilDone<Attempts>(deps, async (attempts) => {
    const startedAt = deps.now();
    const outcome = await deps.attempt(signal);
    deps.observe?.(outcome, deps.now() - startedAt);
    // Only a stored message shows the store works: during a write outage it still validates and rejects.
    if (outcome.kind === "delivered") deps.evidence?.stored();
    switch (outcome.kind) {
      case "delivered":
        if (attempts > 1) deps.log.info("Delivered after retries", { attempts, status: outcome.status });
        return { kind: "done", value: { kind: "delivered", status: outcome.status, attempts } };
      case "rejected": {
        const waitMs = deps.policy.responseWaitMs;
        if (deps.answers === undefined || waitMs === undefined || !isUnknownRequest(outcome)) {
          return {
            kind: "done",
            value: rejection(outcome, outcome.reason, attempts),
          };
        }
        // The message it answers may be on another partition, in another process, or not produced yet.
        if (deps.now() - firstAt < waitMs) {
          const fields = { attempt: attempts, status: outcome.status, reason: outcome.reason };
          return {
            kind: "again",
            failure: { message: "The message this one answers is not stored yet, will retry", fields },
          };
        }
        const reason = `${outcome.reason} (still after --response-wait ${formatDuration(waitMs)})`;
        return { kind: "done", value: rejection(outcome, reason, attempts) };
      }
      case "retry": {
        const failingMs = deps.now() - firstAt;
        if (deps.policy.giveUpMs !== undefined && !configFault && failingMs >= deps.policy.giveUpMs) {
          const reason = `gave up after ${attempts} attempts over ${wholeSeconds(failingMs)} ` +
            `(--retry-give-up): ${outcome.reason}`;
          return { kind: "done", value: rejection(outcome, reason, attempts) };
        }
        if (!configFault && await isPoison(deps, outcome, { attempts, firstAt, startedAt }, tally)) {
          deps.onPoison?.();
          const over = wholeSeconds(deps.now() - tally.since!);
          const reason = `failed on all ${tally.attempts} attempts over ${over} while the ` +
            `EventStore worked, so it is taken as rejected (--poison-after): ${outcome.reason}`;
          return { kind: "done", value: rejection(outcome, reason, attempts) };
        }
        const fields = { attempt: attempts, status: outcome.status, reason: outcome.reason };
        const failure = { message: "Delivery failed, will retry", fields };
        return { kind: "again", failure, retryAfterMs: outcome.retryAfterMs };
      }
      case "config-fault":
        configFault = true;
        if (deps.shouldAlarm()) {
          deps.log.error(
            "Configuration fault: every delivery would fail alike, so this partition is held and " +
              "retried until it is fixed",
            { attempt: attempts, status: outcome.status, reason: outcome.reason },
          );
        }
        return { kind: "again" };
    }
  }, signal).finally(() => tally.stopFailing?.());
}

/** The failed attempts of a record that count toward the poison bound, and when the first of them began. */
interface PoisonTally {
  attempts: number;
  since: number | undefined;
  /** Ends this record's place among the records failing now, once it failed. */
  stopFailing?: () => void;
}

/**
 * Counts a failed attempt (a 5xx or a timeout) toward the poison bound when the EventStore worked after it
 * began; true once the counted attempts are past the bound. Failures while it answered nothing say nothing
 * of the record: after a stall, a retry racing its own first attempt inside the store gets a 500 once, and
 * must not be taken as poison for the timeouts before it. The evidence: the answer itself naming a unique
 * constraint the record breaks, or another message stored; the probe, which costs the store a request, only
 * once the record is past the bound on all its failures, and only while no other record fails (a store that
 * cannot write answers its search all the same).
 */
async function isPoison(
  deps: DeliverWithRetriesDeps,
  outcome: Outcome,
  record: { attempts: number; firstAt: number; startedAt: number },
  tally: PoisonTally,
): Promise<boolean> {
  const { poison: policy } = deps.policy;
  const { evidence } = deps;
  if (policy === undefined || evidence === undefined || !isPoisonFailure(outcome)) return false;
  tally.stopFailing ??= evidence.failing();
  const worked = conflictsWithStored(outcome) || evidence.storedSince(record.startedAt) ||
    (pastPoisonBound(policy, record.attempts, deps.now() - record.firstAt) &&
      await evidence.worksSince(record.startedAt));
  if (!worked) return false;
  tally.attempts++;
  tally.since ??= record.startedAt;
  return pastPoisonBound(policy, tally.attempts, deps.now() - tally.since);
}

/** A record's rejection for `reason`, with the EventStore's diagnostics of `outcome` for the dead letter. */
function rejection(
  outcome: Extract<Outcome, { kind: "rejected" | "retry" }>,
  reason: string,
  attempts: number,
): Extract<DeliveryResult, { kind: "rejected" }> {
  const { status, diagnostics } = outcome;
  return {
    kind: "rejected",
    status,
    reason,
    attempts,
    ...(diagnostics === undefined ? {} : { diagnostics }),
  };
}

/** An elapsed time for a reason, in whole seconds (at least 1s). */
function wholeSeconds(ms: number): string {
  return formatDuration(Math.max(1, Math.round(ms / 1_000)) * 1_000);
}

/** A rate limit for alarms: true at most once per `intervalMs`. */
export function alarmThrottle(intervalMs: number, now: () => number): () => boolean {
  let last = -Infinity;
  return () => {
    if (now() - last < intervalMs) return false;
    last = now();
    return true;
  };
}

/**
 * The EventStore as deliveries and `check` reach it: one HTTP client with the TLS material (also for the
 * token endpoint), the sender of POSTs, and the bearer tokens (none without credentials).
 */
export function connectEventStore(
  options: Pick<DeliveryOptions, "eventstoreUrl" | "eventstoreHeaders" | "requestTimeoutMs"> & {
    maxInFlight: number;
    http2: boolean;
  },
  credentials: { eventstoreTls: TlsMaterial; eventstoreAuth: EventStoreCredentials },
  onToken: (token: string) => void,
): {
  client: Deno.HttpClient;
  send: Send;
  tokens: TokenSource | undefined;
  /** Asks the EventStore's search for `count` messages, with the credentials and headers of deliveries. */
  search: (count: 0 | 1) => Promise<Outcome>;
  evidence: StoreEvidence;
} {
  const timeoutMs = options.requestTimeoutMs;
  const client = createEventStoreClient(credentials.eventstoreTls, options);
  const tokens = createTokenSource(credentials.eventstoreAuth, { timeoutMs, client, onToken });
  const search = (count: 0 | 1) =>
    authorized(
      tokens,
      (auth) =>
        probeSearch(options.eventstoreUrl, {
          count,
          timeoutMs,
          client,
          headers: { ...options.eventstoreHeaders, ...auth },
        }),
      AbortSignal.timeout(timeoutMs),
    );
  const send = createSender(credentials.eventstoreTls, options, client);
  // The probe asks for no message: it reads no health data.
  return { client, send, tokens, search, evidence: createStoreEvidence(() => search(0), Date.now) };
}
