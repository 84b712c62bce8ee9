import { headerValues, type SourceRecord } from "./record.ts";
import { USER_AGENT } from "./version.ts";

/** The media type assumed when a record has no `Content-Type` header, as the original service did. */
export const DEFAULT_CONTENT_TYPE = "application/fhir+json; fhirVersion=4.0";
/** The EventStore's limit for `X-Request-ID`. */
export const MAX_REQUEST_ID_LENGTH = 200;

/** The POST that delivers one record, or why the record can never be a valid request. */
export type BuiltRequest =
  | { ok: true; url: string; headers: Record<string, string>; body: Uint8Array }
  | { ok: false; reason: string };

/** The EventStore endpoint that takes FHIR messages. */
export function processMessageUrl(eventstoreUrl: string): string {
  return `${eventstoreUrl}/fhir/4.0/$process-message`;
}

/**
 * Builds the POST for a record: its value byte for byte, its own `Content-Type`, a stable request id, and
 * the configured extra `headers` (which never replace eventsink's own; config.ts refuses those names).
 */
export function buildRequest(
  record: SourceRecord,
  eventstoreUrl: string,
  options: { headers?: Record<string, string> } = {},
): BuiltRequest {
  if (record.value === null) return { ok: false, reason: "the record has no value (a tombstone)" };
  if (record.value.length === 0) return { ok: false, reason: "the record's value is empty" };
  const contentType = recordContentType(record);
  if (!contentType.ok) return contentType;
  return {
    ok: true,
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
  };
}

/** `eventsink-<topic>-<partition>-<offset>`, cut to the EventStore's limit. */
export function requestId(record: SourceRecord): string {
  return `eventsink-${record.topic}-${record.partition}-${record.offset}`.slice(0, MAX_REQUEST_ID_LENGTH);
}

function recordContentType(
  record: SourceRecord,
): { ok: true; value: string } | { ok: false; reason: string } {
  const values = headerValues(record.headers, "content-type");
  if (values.length === 0) return { ok: true, value: DEFAULT_CONTENT_TYPE };
  const texts = new Set(values.map((v) => (typeof v === "string" ? v.trim() : v)));
  if (texts.size > 1) return { ok: false, reason: "the record has Content-Type headers that disagree" };
  const [value] = texts;
  // A header value must be visible ASCII or spaces; anything else would be refused by fetch itself.
  if (typeof value !== "string" || !/^[\x20-\x7e]+$/.test(value)) {
    return { ok: false, reason: "the record's Content-Type header is not a valid HTTP header value" };
  }
  return { ok: true, value };
}
