import { errorChainText, explainTlsFailure } from "../security/tls_errors.ts";

/**
 * What one POST to the EventStore came to, as `classifyStatus` reads the answer: a 2xx is delivered; a
 * status that says the message itself is wrong rejects it; a transient one is retried; any other answer (a
 * redirect, wrong credentials or URL, an unknown 4xx) is a configuration fault, which holds the partition.
 * POSTs may be retried freely: the EventStore is idempotent on the message id, so a repeat of a delivered
 * message is answered 202 again and stores nothing twice.
 */
export type Outcome =
  | { kind: "delivered"; status: number }
  /** The message itself is wrong; sending it again cannot help. */
  | { kind: "rejected"; status: number; reason: string }
  /** Transient: the same request may succeed later. */
  | { kind: "retry"; status?: number; reason: string; retryAfterMs?: number }
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

/** Classifies an HTTP answer. `detail` is the OperationOutcome diagnostics, if any. */
export function classifyStatus(status: number, detail: string, retryAfterMs?: number): Outcome {
  const said = `EventStore answered ${status}${detail === "" ? "" : `: ${detail}`}`;
  if (status >= 200 && status < 300) return { kind: "delivered", status };
  if (REJECTED_STATUSES.has(status)) {
    const hint = detail === "" ? REJECTION_HINTS[status] : undefined;
    return { kind: "rejected", status, reason: hint === undefined ? said : `${said} (${hint})` };
  }
  if (isRetriableStatus(status)) return retryOutcome(status, said, retryAfterMs);
  if (status >= 300 && status < 400) {
    return {
      kind: "config-fault",
      status,
      reason: `${said} (a redirect: set --eventstore-url to the final URL)`,
    };
  }
  // Unknown 4xx and anything else: hold the record rather than lose it, and let an operator look.
  const hint = CONFIG_FAULT_HINTS[status];
  return { kind: "config-fault", status, reason: hint === undefined ? said : `${said} (${hint})` };
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

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Longest diagnostics text kept from an OperationOutcome, for log lines and dead-letter headers. */
export const MAX_DIAGNOSTICS_CHARS = 500;

/** Extracts the human-readable part of an OperationOutcome body; "" when there is none. */
export function operationOutcomeDiagnostics(body: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return "";
  }
  if (!isRecord(parsed) || parsed.resourceType !== "OperationOutcome" || !Array.isArray(parsed.issue)) {
    return "";
  }
  const texts = parsed.issue.filter(isRecord).map((issue) => {
    const details = isRecord(issue.details) ? issue.details.text : undefined;
    const text = issue.diagnostics ?? details ?? issue.code;
    return typeof text === "string" ? text : "";
  }).filter((text) => text !== "");
  return truncate(texts.join("; "), MAX_DIAGNOSTICS_CHARS);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
