import { errorChainText, explainTlsFailure } from "../security/tls_errors.ts";
import { NOTHING_SAID, type StoreSaid } from "./diagnostics.ts";

/**
 * What one POST to the EventStore came to, as `classifyStatus` reads the answer: a 2xx is delivered; a
 * status that says the message itself is wrong rejects it; a transient one is retried; any other answer (a
 * redirect, wrong credentials or URL, an unknown 4xx) is a configuration fault, which holds the partition.
 * POSTs may be retried freely: the EventStore is idempotent on the message id, so a repeat of a delivered
 * message is answered 202 again and stores nothing twice.
 */
export type Outcome =
  | { kind: "delivered"; status: number }
  /**
   * The message itself is wrong; sending it again cannot help. `reason` is for log lines (without the
   * record's content, see diagnostics.ts); `diagnostics`, the EventStore's text in full, for the dead letter.
   */
  | { kind: "rejected"; status: number; reason: string; diagnostics?: string }
  /** Transient: the same request may succeed later. */
  | { kind: "retry"; status?: number; reason: string; retryAfterMs?: number; diagnostics?: string }
  /** eventsink or a peer is misconfigured; every message would fail alike, so hold and retry. */
  | { kind: "config-fault"; status?: number; reason: string };

/** The message is wrong: dead-letter or skip it, by policy. */
export const REJECTED_STATUSES: ReadonlySet<number> = new Set([400, 409, 413, 415, 422]);
/** Wrong URL or credentials: never drain the topic on these. */
export const CONFIG_FAULT_STATUSES: ReadonlySet<number> = new Set([401, 403, 404, 405]);
/** Worth repeating besides every 5xx: timeouts, too early, too many requests. */
const RETRY_STATUSES: ReadonlySet<number> = new Set([408, 425, 429]);

/** Whether a status is transient (the EventStore's or a token endpoint's): asking again may help. */
export function isRetriableStatus(status: number): boolean {
  return RETRY_STATUSES.has(status) || (status >= 500 && status < 600);
}

/** A transient failure; `retryAfterMs` is the peer's `Retry-After`, if it gave one. */
export function retryOutcome(
  status: number,
  reason: string,
  retryAfterMs: number | undefined,
): Extract<Outcome, { kind: "retry" }> {
  return retryAfterMs === undefined
    ? { kind: "retry", status, reason }
    : { kind: "retry", status, reason, retryAfterMs };
}

/** Why the EventStore refused a message when its answer has no body to say so (the real store's 415 has none). */
const REJECTION_HINTS: Record<number, string> = {
  415:
    "the EventStore takes only Content-Type application/fhir+json, bare or with fhirVersion=4.0; check the producer's Content-Type header",
};

/** What to check when the EventStore answers one of {@link CONFIG_FAULT_STATUSES}. */
const CONFIG_FAULT_HINTS: Record<number, string> = {
  401: "check the EventStore credentials",
  403: "check the EventStore credentials and what they allow",
  404: "check --eventstore-url: the base URL, without /fhir/4.0",
  405: "check --eventstore-url: the base URL, without /fhir/4.0",
};

/** Classifies an HTTP answer by its status and what its OperationOutcome said (see diagnostics.ts). */
export function classifyStatus(
  status: number,
  said: StoreSaid = NOTHING_SAID,
  retryAfterMs?: number,
): Outcome {
  const answered = `EventStore answered ${status}${said.logged === "" ? "" : `: ${said.logged}`}`;
  const full = said.full === "" ? {} : { diagnostics: said.full };
  if (status >= 200 && status < 300) return { kind: "delivered", status };
  if (REJECTED_STATUSES.has(status)) {
    const hint = said.logged === "" ? REJECTION_HINTS[status] : undefined;
    return {
      kind: "rejected",
      status,
      reason: hint === undefined ? answered : `${answered} (${hint})`,
      ...full,
    };
  }
  if (isRetriableStatus(status)) return { ...retryOutcome(status, answered, retryAfterMs), ...full };
  if (status >= 300 && status < 400) {
    return {
      kind: "config-fault",
      status,
      reason: `${answered} (a redirect: set --eventstore-url to the final URL)`,
    };
  }
  // Unknown 4xx and anything else: hold the record rather than lose it, and let an operator look.
  const hint = CONFIG_FAULT_HINTS[status];
  return { kind: "config-fault", status, reason: hint === undefined ? answered : `${answered} (${hint})` };
}

/** The TLS options of the EventStore, which a TLS failure points at. */
const EVENTSTORE_TLS_OPTIONS = { ca: "--eventstore-ca", cert: "--eventstore-cert" };

/**
 * Classifies a failed request to `peer` ("the EventStore", "the token endpoint …"): its own timeout and
 * network failures (a TypeError from fetch, an Error with a `code` from undici) are transient, except a TLS
 * certificate failure, which is a configuration fault. Anything else, including an abort because eventsink
 * is stopping, is not an outcome: undefined.
 */
export function classifyFetchError(
  error: unknown,
  timeoutMs: number,
  peer = "the EventStore",
): Extract<Outcome, { kind: "retry" | "config-fault" }> | undefined {
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return { kind: "retry", reason: `${capitalise(peer)} did not answer within ${timeoutMs} ms` };
  }
  // Deno's fetch fails with a TypeError; undici and node:net/node:tls with an Error that has a code.
  if (
    error instanceof TypeError ||
    (error instanceof Error && typeof (error as { code?: unknown }).code === "string")
  ) {
    const detail = errorChainText(error);
    const tls = explainTlsFailure(detail, EVENTSTORE_TLS_OPTIONS);
    return tls === undefined
      ? { kind: "retry", reason: `Cannot reach ${peer}: ${detail}` }
      : { kind: "config-fault", reason: `Cannot connect to ${peer}: ${tls}` };
  }
  return undefined;
}

export function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
