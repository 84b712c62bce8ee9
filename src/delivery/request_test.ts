import assert from "node:assert/strict";
import type { SourceRecord } from "../record.ts";
import { describeKey, headerValues } from "../record.ts";
import { buildRequest, DEFAULT_CONTENT_TYPE, requestId } from "./request.ts";

const encoder = new TextEncoder();
const value = encoder.encode('{"resourceType":"Bundle"}');

function record(overrides: Partial<SourceRecord> = {}): SourceRecord {
  return {
    topic: "fhir",
    partition: 2,
    offset: 41,
    key: encoder.encode("5f3c0a1e-2a4b-4bd0-9d1e-7a3f2c1b0e9d"),
    value,
    headers: {},
    timestamp: "0",
    ...overrides,
  };
}

Deno.test("request: extra headers are added, eventsink's own are kept", () => {
  const built = buildRequest(record(), "http://es.test", {
    headers: { "x-tenant": "nav", "x-api-version": "2" },
  });
  assert.ok(built.kind === "request");
  assert.equal(built.headers["x-tenant"], "nav");
  assert.equal(built.headers["x-api-version"], "2");
  assert.equal(built.headers["content-type"], DEFAULT_CONTENT_TYPE);
});

Deno.test("request: the value goes unmodified to $process-message with the record's Content-Type", () => {
  const built = buildRequest(
    record({
      headers: { "Content-Type": encoder.encode("application/fhir+json; fhirVersion=4.0; charset=utf-8") },
    }),
    "http://es.test/base",
  );
  assert.ok(built.kind === "request");
  assert.equal(built.url, "http://es.test/base/fhir/4.0/$process-message");
  assert.strictEqual(built.body, value, "the very same bytes, not a copy or a re-encoding");
  assert.equal(built.headers["content-type"], "application/fhir+json; fhirVersion=4.0; charset=utf-8");
  assert.equal(built.headers["x-request-id"], "eventsink-fhir-2-41");
  assert.match(built.headers["user-agent"]!, /^eventsink\/\d+\.\d+\.\d+/);
});

Deno.test("request: header name is matched case-insensitively; absent means the documented default", () => {
  const lower = buildRequest(record({ headers: { "content-type": "application/json" } }), "http://es");
  assert.ok(lower.kind === "request" && lower.headers["content-type"] === "application/json");
  const none = buildRequest(record(), "http://es");
  assert.ok(none.kind === "request" && none.headers["content-type"] === DEFAULT_CONTENT_TYPE);
});

Deno.test("request: a tombstone is no message", () => {
  assert.deepEqual(buildRequest(record({ value: null }), "http://es"), { kind: "tombstone" });
});

Deno.test("request: records that can never be a valid request are refused locally, saying why", () => {
  const cases: Array<[Partial<SourceRecord>, RegExp]> = [
    [{ value: new Uint8Array() }, /value is empty/],
    [{ headers: { "Content-Type": "application/json", "content-type": "application/fhir+xml" } }, /disagree/],
    [{ headers: { "Content-Type": "application/json\r\nX-Evil: 1" } }, /not a valid HTTP header value/],
    [{ headers: { "Content-Type": new Uint8Array([0xff, 0xfe]) } }, /not a valid HTTP header value/],
    [{ value: new Uint8Array([0xff, 0xfe, 0x7b]) }, /not valid UTF-8/],
    [{ value: encoder.encode("name=Kari Nordmann") }, /^the value is not valid JSON although/],
    [{ value: encoder.encode("[1,2]") }, /not an object/],
    [
      { value: encoder.encode('{"a":1}'), headers: { "content-type": "application/json" } },
      /no resourceType/,
    ],
    // The EventStore answers 500 to any other resource, every time: it would hold the partition.
    [
      { value: encoder.encode('{"resourceType":"Patient","id":"Kari"}') },
      /^the value is a FHIR resource other than a Bundle, so it cannot be a message$/,
    ],
    [{ value: encoder.encode('{"resourceType":"MessageHeader"}') }, /other than a Bundle/],
  ];
  for (const [overrides, reason] of cases) {
    const built = buildRequest(record(overrides), "http://es");
    assert.equal(built.kind, "invalid", String(reason));
    assert.match((built as { reason: string }).reason, reason);
    assert.ok(!(built as { reason: string }).reason.includes("Kari"), "a reason never quotes the value");
  }
});

Deno.test("request: values of other media types (FHIR XML) are not judged here", () => {
  const xml = record({
    value: encoder.encode("<Bundle/>"),
    headers: { "Content-Type": "application/fhir+xml" },
  });
  assert.equal(buildRequest(xml, "http://es").kind, "request");
});

Deno.test("request: the request id stays within 200 characters", () => {
  const id = requestId(record({ topic: "t".repeat(249) }));
  assert.equal(id.length, 200);
});

Deno.test("record: header values and keys for logs", () => {
  assert.deepEqual(headerValues({ A: ["x", encoder.encode("y")], a: "z", b: "no" }, "a"), ["x", "y", "z"]);
  assert.equal(describeKey(null), "(null)");
  assert.equal(describeKey(encoder.encode("abc")), "abc");
  assert.equal(describeKey(new Uint8Array([0, 1, 2, 0xff])), "(binary, 4 bytes)");
});

Deno.test("request: a message's own id and the id it answers are read from its MessageHeader", () => {
  const header = { resourceType: "MessageHeader", id: "m-2", response: { identifier: "m-1", code: "ok" } };
  const bundle = { resourceType: "Bundle", entry: [{ resource: header }] };
  const built = buildRequest(record({ value: encoder.encode(JSON.stringify(bundle)) }), "http://es");
  assert.ok(built.kind === "request");
  assert.deepEqual(built.refs, { id: "m-2", answers: "m-1" });
  const request = { ...bundle, entry: [{ resource: { ...header, response: undefined } }] };
  assert.deepEqual(
    (buildRequest(record({ value: encoder.encode(JSON.stringify(request)) }), "http://es") as {
      refs: unknown;
    }).refs,
    { id: "m-2" },
  );
  const xml = buildRequest(
    record({ value: encoder.encode("<Bundle/>"), headers: { "content-type": "application/fhir+xml" } }),
    "http://es",
  );
  assert.deepEqual((xml as { refs: unknown }).refs, {});
});
