import { type MessageRefs, scanMessage } from "./message_scan.ts";
import { headerValues, type SourceRecord } from "../record.ts";
import { USER_AGENT } from "../version.ts";

/** The media type assumed when a record has no `Content-Type` header, as the original service did. */
export const DEFAULT_CONTENT_TYPE = "application/fhir+json; fhirVersion=4.0";
/** The EventStore's limit for `X-Request-ID`. */
export const MAX_REQUEST_ID_LENGTH = 200;

/** The POST that delivers one record; why the record can never be a valid request; or a tombstone. */
export type BuiltRequest =
  | { kind: "request"; url: string; headers: Record<string, string>; body: Uint8Array; refs: MessageRefs }
  | { kind: "invalid"; reason: string }
  /** A null value: Kafka's deletion marker, not a message. */
  | { kind: "tombstone" };

/**
 * What a record comes to before any POST: the POST that delivers it; or already the end of its delivery,
 * as a tombstone or rejected locally for good, without an attempt (the dry run's answer too).
 */
export type LocalVerdict =
  | Extract<BuiltRequest, { kind: "request" | "tombstone" }>
  | { kind: "rejected"; status: undefined; reason: string; attempts: 0 };

/** Judges a record as {@link buildRequest} does, with its refusal as a rejection that made no attempt. */
export function localVerdict(
  record: SourceRecord,
  eventstoreUrl: string,
  options: { headers?: Record<string, string> } = {},
): LocalVerdict {
  const built = buildRequest(record, eventstoreUrl, options);
  return built.kind === "invalid"
    ? { kind: "rejected", status: undefined, reason: built.reason, attempts: 0 }
    : built;
}

/** The EventStore endpoint that takes FHIR messages. */
export function processMessageUrl(eventstoreUrl: string): string {
  return `${eventstoreUrl}/fhir/4.0/$process-message`;
}

/**
 * The EventStore search for `count` stored messages: `eventsink check` asks for 1, as the original
 * service's smoke test did; a probe asks for 0, which reads no message (health data) at all.
 */
export function searchUrl(eventstoreUrl: string, count: 0 | 1): string {
  return `${eventstoreUrl}/fhir/4.0/Bundle?_count=${count}`;
}

/**
 * Builds the POST for a record: its value byte for byte, its own `Content-Type`, a stable request id, and
 * the configured extra `headers` (which never replace eventsink's own; src/config/values.ts refuses those
 * names).
 */
export function buildRequest(
  record: SourceRecord,
  eventstoreUrl: string,
  options: { headers?: Record<string, string> } = {},
): BuiltRequest {
  if (record.value === null) return { kind: "tombstone" };
  if (record.value.length === 0) return { kind: "invalid", reason: "the record's value is empty" };
  const contentType = recordContentType(record);
  if (!contentType.ok) return { kind: "invalid", reason: contentType.reason };
  const json = contentType.json ? scanMessage(record.value) : { refs: {} };
  if ("problem" in json) return { kind: "invalid", reason: json.problem };
  return {
    kind: "request",
    url: processMessageUrl(eventstoreUrl),
    headers: {
      ...options.headers,
      "content-type": contentType.value,
      accept: "application/fhir+json",
      "user-agent": USER_AGENT,
      // Stable across retries, so the EventStore's log ties every attempt to the one record.
      "x-request-id": requestId(record),
    },
    body: record.value,
    refs: json.refs,
  };
}

/** `eventsink-<topic>-<partition>-<offset>`, cut to the EventStore's limit. */
export function requestId(record: SourceRecord): string {
  return `eventsink-${record.topic}-${record.partition}-${record.offset}`.slice(0, MAX_REQUEST_ID_LENGTH);
}

/** `application/json`, `application/fhir+json` and any other `+json` type, parameters aside. */
function isJsonMediaType(contentType: string): boolean {
  const essence = contentType.split(";")[0]!.trim().toLowerCase();
  return essence === "application/json" || /^[a-z]+\/[a-z0-9.+-]*\+json$/.test(essence);
}

/** A record's Content-Type, judged; the same text is judged once (a topic's records mostly share one). */
type ContentType = { ok: true; value: string; json: boolean } | { ok: false; reason: string };

const DEFAULT_TYPE: ContentType = { ok: true, value: DEFAULT_CONTENT_TYPE, json: true };
let lastJudged: { text: string; judged: ContentType } | undefined;

function recordContentType(record: SourceRecord): ContentType {
  const values = headerValues(record.headers, "content-type");
  if (values.length === 0) return DEFAULT_TYPE;
  const first = values[0]!;
  const value = typeof first === "string" ? first.trim() : first;
  for (const other of values) {
    const text = typeof other === "string" ? other.trim() : other;
    if (text !== value) return { ok: false, reason: "the record has Content-Type headers that disagree" };
  }
  if (typeof value !== "string") return INVALID_TYPE;
  if (lastJudged?.text !== value) lastJudged = { text: value, judged: judgeContentType(value) };
  return lastJudged.judged;
}

const INVALID_TYPE: ContentType = {
  ok: false,
  reason: "the record's Content-Type header is not a valid HTTP header value",
};

function judgeContentType(value: string): ContentType {
  // A header value must be visible ASCII or spaces; anything else would be refused by fetch itself.
  if (!/^[\x20-\x7e]+$/.test(value)) return INVALID_TYPE;
  return { ok: true, value, json: isJsonMediaType(value) };
}
