import type { LogFields } from "./log.ts";

/** A header value as Kafka clients hand it over: bytes, text, or several of them. */
export type HeaderValue = Uint8Array | string | Array<Uint8Array | string> | undefined;

/** A record to write (a dead letter). */
export interface OutgoingRecord {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, HeaderValue>;
}

/** One consumed Kafka record, as eventsink sees it. */
export interface SourceRecord {
  topic: string;
  partition: number;
  offset: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, HeaderValue>;
  /** Milliseconds since the epoch, as text (Kafka's record timestamp). */
  timestamp: string;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const lenientUtf8 = new TextDecoder("utf-8");

/** Every value of a header, its name matched case-insensitively, decoded as UTF-8 where possible. */
export function headerValues(headers: Record<string, HeaderValue>, name: string): Array<string | Uint8Array> {
  // A loop, not entries/filter/flatMap: it runs for every record (the Content-Type), and their arrays were
  // a measurable part of the garbage per record.
  const wanted = name.toLowerCase();
  const values: Array<string | Uint8Array> = [];
  for (const key in headers) {
    const value = headers[key];
    if (value === undefined || (key !== wanted && key.toLowerCase() !== wanted)) continue;
    if (!Array.isArray(value)) values.push(headerText(value));
    else for (const one of value) values.push(headerText(one));
  }
  return values;
}

function headerText(value: string | Uint8Array): string | Uint8Array {
  return typeof value === "string" ? value : decodeHeaderValue(value);
}

let lastHeaderValue: { bytes: Uint8Array; decoded: string | Uint8Array } | undefined;

/** A header value's text; the bytes of the last one are remembered, as a topic's records mostly share them. */
function decodeHeaderValue(bytes: Uint8Array): string | Uint8Array {
  const last = lastHeaderValue;
  if (last !== undefined && typeof last.decoded === "string" && sameBytes(last.bytes, bytes)) {
    return last.decoded;
  }
  const decoded = decodeOrBytes(bytes);
  lastHeaderValue = { bytes: bytes.slice(), decoded };
  return decoded;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function decodeOrBytes(bytes: Uint8Array): string | Uint8Array {
  return decodeUtf8(bytes) ?? bytes;
}

/** The bytes as text when they are valid UTF-8, else undefined. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  // The lenient decoder costs a fifth of the strict one (Deno's fast path) and marks every invalid sequence
  // with U+FFFD; only a text with such a mark, real or not, needs the strict answer.
  const text = lenientUtf8.decode(bytes);
  if (!text.includes("\uFFFD")) return text;
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A record's key for log lines: text when it is short printable UTF-8, else its size only. */
export function describeKey(key: Uint8Array | null): string {
  if (key === null) return "(null)";
  const text = decodeOrBytes(key);
  // deno-lint-ignore no-control-regex
  if (typeof text === "string" && text.length <= 128 && !/[\u0000-\u001f\u007f]/.test(text)) return text;
  return `(binary, ${key.length} bytes)`;
}

/** The fields that name a record in every log line about it. Never its value: messages are health data. */
export function recordFields(record: SourceRecord): LogFields {
  return {
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    key: describeKey(record.key),
  };
}

/** "topic/partition@offset", for messages that name a record. */
export function recordName(record: SourceRecord): string {
  return `${record.topic}/${record.partition}@${record.offset}`;
}
