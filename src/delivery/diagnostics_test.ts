/** The EventStore's diagnostics: in full for the dead letter, without the record's content for the log. */
import assert from "node:assert/strict";
import { readOperationOutcome, scrub } from "./diagnostics.ts";

const outcome = (...issue: unknown[]) => JSON.stringify({ resourceType: "OperationOutcome", issue });

Deno.test("diagnostics: read from an OperationOutcome, never from anything else", () => {
  const body = outcome(
    { severity: "error", code: "invalid", diagnostics: "Bundle.timestamp is required." },
    { severity: "error", code: "invalid", details: { text: "fullUrl mismatch" } },
    { severity: "error", code: "not-found" },
  );
  assert.deepEqual(readOperationOutcome(body), {
    logged: "Bundle.timestamp is required.; fullUrl mismatch; not-found",
    full: "Bundle.timestamp is required.; fullUrl mismatch; not-found",
  });
  for (const body of ["<html>Bad gateway</html>", JSON.stringify({ resourceType: "Bundle" }), ""]) {
    assert.deepEqual(readOperationOutcome(body), { logged: "", full: "" });
  }
});

Deno.test("diagnostics: the log's version keeps HAPI's element and location, not the value", () => {
  const diagnostics = `[element="status"] Invalid attribute value "Kari": Unknown TaskStatus code 'Kari'`;
  const said = readOperationOutcome(
    outcome({
      severity: "error",
      code: "processing",
      diagnostics,
      location: ["Bundle.entry[1].resource.status"],
    }),
  );
  assert.equal(
    said.logged,
    `[element="status"] Invalid attribute value "…": Unknown TaskStatus code '…' (at Bundle.entry[1].resource.status)`,
  );
  assert.equal(said.full, diagnostics);
});

Deno.test("diagnostics: no text value of the record reaches the log's version, quoted or not", () => {
  const record = new TextEncoder().encode(JSON.stringify({
    resourceType: "Bundle",
    type: "message",
    id: "8d1e2a5c-1111-4c2b-9a77-5d0a6b1c2d3e",
    entry: [{
      resource: { resourceType: "Patient", name: [{ text: "Kari Hemmelig-Nordmann" }], fnr: 13097248022 },
    }],
  }));
  const echo =
    "A message for Kari Hemmelig-Nordmann (13097248022) with ID=8d1e2a5c-1111-4c2b-9a77-5d0a6b1c2d3e";
  const said = readOperationOutcome(
    outcome({ severity: "error", code: "exception", diagnostics: echo }),
    record,
  );
  assert.equal(said.logged, "A message for … (…) with ID=…");
  assert.equal(said.full, echo, "the dead letter keeps it all");
});

Deno.test("diagnostics: quoted text and long digit runs go, whatever the record", () => {
  assert.equal(
    scrub(`Failed to parse: Unexpected character at [Source: (String)"{"name":"Ola"}"; line: 1]`, []),
    `Failed to parse: Unexpected character at [Source: (String)"…"; line: 1]`,
  );
  assert.equal(scrub("fnr 13097248022, Bundle.entry[12]", []), "fnr …, Bundle.entry[12]");
});

Deno.test("diagnostics: the real store's texts keep their sense (measured against hops-eventstore)", () => {
  const cases: Array<[string, string]> = [
    [
      "Can't find 'Task/123' in the bundle (MessageHeader Data); Entry 'urn:uuid:8e7a1aab' isn't reachable",
      "Can't find '…' in the bundle (MessageHeader Data); Entry '…' isn't reachable",
    ],
    ["Invalid UUID string: message-bundle-1", "Invalid UUID string: message-bundle-1"],
    ["Bundle.timestamp cannot be in the future.", "Bundle.timestamp cannot be in the future."],
    [
      `[element="timestamp"] Invalid attribute value "13097248022": Invalid date/time format: "13097248022"`,
      `[element="timestamp"] Invalid attribute value "…": Invalid date/time format: "…"`,
    ],
  ];
  for (const [text, logged] of cases) assert.equal(scrub(text, []), logged);
});
