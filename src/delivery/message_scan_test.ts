import assert from "node:assert/strict";
import { isObject } from "./json.ts";
import { scanMessage, type ScanResult } from "./message_scan.ts";

const encoder = new TextEncoder();

/** What the scan must answer: the value decoded strictly, parsed by JSON.parse, and judged on the result. */
function reference(value: Uint8Array): ScanResult {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(value);
  } catch {
    return { problem: "the value is not valid UTF-8, so it cannot be FHIR JSON" };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { problem: "the value is not valid JSON although its Content-Type says JSON" };
  }
  if (!isObject(parsed)) return { problem: "the value is JSON but not a FHIR resource (not an object)" };
  if (typeof parsed.resourceType !== "string") {
    return { problem: "the value is JSON but not a FHIR resource (no resourceType)" };
  }
  if (parsed.resourceType !== "Bundle") {
    return { problem: "the value is a FHIR resource other than a Bundle, so it cannot be a message" };
  }
  const entries = parsed.entry;
  const header = Array.isArray(entries) && isObject(entries[0]) ? entries[0].resource : undefined;
  if (!isObject(header) || header.resourceType !== "MessageHeader") return { refs: {} };
  const answers = isObject(header.response) ? header.response.identifier : undefined;
  return {
    refs: {
      ...(typeof header.id === "string" ? { id: header.id } : {}),
      ...(typeof answers === "string" ? { answers } : {}),
    },
  };
}

function agree(value: Uint8Array, what: string): void {
  assert.deepEqual(
    scanMessage(value),
    reference(value),
    `${what}: ${JSON.stringify(new TextDecoder().decode(value))}`,
  );
}

const fixtures = await (async () => {
  const dir = new URL("../../tests/fixtures/fhir-messages/", import.meta.url);
  const files = [...Deno.readDirSync(dir)].filter((f) => f.name.endsWith(".json")).map((f) => f.name).sort();
  return await Promise.all(files.map((name) => Deno.readFile(new URL(name, dir))));
})();

Deno.test("scanMessage: the platform's messages are Bundles whose MessageHeader ids it reads", () => {
  assert.ok(fixtures.length >= 3);
  for (const value of fixtures) {
    const result = scanMessage(value);
    assert.ok("refs" in result && typeof result.refs.id === "string", JSON.stringify(result));
    agree(value, "fixture");
    agree(encoder.encode(JSON.stringify(JSON.parse(new TextDecoder().decode(value)), null, 2)), "indented");
  }
});

Deno.test("scanMessage: answers as decoding and JSON.parse do, case by case", () => {
  const cases = [
    // Not JSON, or not a message.
    "",
    " ",
    "{",
    "}",
    "[]",
    "null",
    '"Bundle"',
    "12",
    "{}",
    '{"resourceType":1}',
    '{"resourceType":"Patient"}',
    '{"resourceType":"Bundle"}',
    '{"resourceType":"Bundle",}',
    '{"resourceType":"Bundle"} {}',
    '{"resourceType":"Bundle"}  \r\n\t',
    '{"resourceType" "Bundle"}',
    "{'resourceType':'Bundle'}",
    '[{"resourceType":"Bundle"}]',
    // The ids, wherever JSON allows them to be written so.
    '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","id":"a-1"}}]}',
    '{"entry":[{"resource":{"id":"a-1","response":{"identifier":"b-2"},"resourceType":"MessageHeader"}}],"resourceType":"Bundle"}',
    '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"a-1"}}]}',
    '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","id":7}}]}',
    '{"resourceType":"Bundle","entry":[{},{"resource":{"resourceType":"MessageHeader","id":"a"}}]}',
    '{"resourceType":"Bundle","entry":{"resource":{"resourceType":"MessageHeader","id":"a"}}}',
    '{"resourceType":"Bundle","entry":[[{"resource":{"resourceType":"MessageHeader","id":"a"}}]]}',
    '{"resourceType":"Bundle","entry":[{"resource":[{"resourceType":"MessageHeader","id":"a"}]}]}',
    '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","response":[{"identifier":"x"}]}}]}',
    '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","response":{"identifier":null}}}]}',
    '{"resourceType":"Bundle","x":{"entry":[{"resource":{"resourceType":"MessageHeader","id":"a"}}]}}',
    '{"resource\\u0054ype":"\\u0042undle","entry":[{"resource":{"resourceType":"Message\\u0048eader","id":"a\\"b\\\\c\\n"}}]}',
    '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","id":"\\ud800"}}]}',
    '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","id":"Kåre 日本 😀"}}]}',
    // Duplicate keys: the last one wins, whatever it holds.
    '{"resourceType":"Bundle","resourceType":"Patient"}',
    '{"resourceType":"Patient","resourceType":"Bundle"}',
    '{"resourceType":"Bundle","resourceType":{"a":1}}',
    '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","id":"a"}}],"entry":[]}',
    '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","id":"a"}}],"entry":7}',
    '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","id":"a","id":false}}]}',
    '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","id":"a"},"resource":{}}]}',
    '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","response":{"identifier":"x"},"response":1}}]}',
    // Scalars, by RFC 8259's grammar.
    '{"resourceType":"Bundle","n":[0,-0,1.5,-2e10,3E+2,4e-2,true,false,null,"",{},[]]}',
    '{"resourceType":"Bundle","n":01}',
    '{"resourceType":"Bundle","n":1.}',
    '{"resourceType":"Bundle","n":.5}',
    '{"resourceType":"Bundle","n":+1}',
    '{"resourceType":"Bundle","n":1e}',
    '{"resourceType":"Bundle","n":-}',
    '{"resourceType":"Bundle","n":NaN}',
    '{"resourceType":"Bundle","n":tru}',
    '{"resourceType":"Bundle","n":nulls}',
    '{"resourceType":"Bundle","s":"\\x"}',
    '{"resourceType":"Bundle","s":"\\u12"}',
    '{"resourceType":"Bundle","s":"\\u12G4"}',
    '{"resourceType":"Bundle","s":"tab\there"}',
    '{"resourceType":"Bundle","s":"\\/\\b\\f\\r\\t"}',
    '{"resourceType":"Bundle","s":"unterminated}',
    '{"resourceType":"Bundle","a":[1,]}',
    '{"resourceType":"Bundle","a":[,1]}',
    '{"resourceType":"Bundle","a":[1 2]}',
    '{"resourceType":"Bundle",1:2}',
    `{"resourceType":"Bundle","deep":${"[".repeat(20_000)}${"]".repeat(20_000)}}`,
    `{"resourceType":"Bundle","deep":${"[".repeat(20_000)}}`,
  ];
  for (const text of cases) agree(encoder.encode(text), "case");
  agree(encoder.encode('\ufeff{"resourceType":"Bundle"}'), "a leading BOM");
  agree(encoder.encode('\ufeff\ufeff{"resourceType":"Bundle"}'), "two BOMs");
  agree(encoder.encode(' \ufeff{"resourceType":"Bundle"}'), "a BOM after a space");
});

Deno.test("scanMessage: invalid UTF-8 is named as such anywhere, even where JSON breaks first", () => {
  const bundle = (bytes: number[]) =>
    new Uint8Array([...encoder.encode('{"resourceType":"Bundle","s":"'), ...bytes, ...encoder.encode('"}')]);
  const invalid = [
    [0x80],
    [0xbf],
    [0xc0, 0xaf], // overlong "/"
    [0xc1, 0xbf],
    [0xe0, 0x80, 0xaf], // overlong
    [0xed, 0xa0, 0x80], // a surrogate
    [0xf0, 0x80, 0x80, 0xaf], // overlong
    [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
    [0xf5, 0x80, 0x80, 0x80],
    [0xff],
    [0xe2, 0x82], // cut short
    [0xf0, 0x9f, 0x98],
  ];
  for (const bytes of invalid) {
    agree(bundle(bytes), `in a string: ${bytes}`);
    agree(new Uint8Array([...encoder.encode("{,"), ...bytes]), `after a JSON error: ${bytes}`);
    agree(
      new Uint8Array([...bytes, ...encoder.encode('{"resourceType":"Bundle"}')]),
      `outside strings: ${bytes}`,
    );
  }
  for (
    const bytes of [[0xc2, 0x80], [0xe0, 0xa0, 0x80], [0xef, 0xbf, 0xbd], [0xf0, 0x90, 0x80, 0x80], [
      0xf4,
      0x8f,
      0xbf,
      0xbf,
    ]]
  ) {
    agree(bundle(bytes), `valid: ${bytes}`);
  }
  agree(new Uint8Array([0xef, 0xbb]), "half a BOM");
});

Deno.test("scanMessage: agrees with decoding and JSON.parse on thousands of mutated messages", () => {
  // A seeded generator, so that a failure repeats.
  let seed = 17;
  const random = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed % n;
  };
  const alphabet = encoder.encode('{}[],:"\\ 0123456789-+.eEtrufalsn\u00e5\ufeff');
  const extra = [0x80, 0xc3, 0xed, 0xf0, 0xff, 0x00, 0x1f];
  let compared = 0;
  for (const fixture of fixtures) {
    // Small messages hit the fields more often than whole fixtures do.
    const small = encoder.encode(
      '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","id":"m","response":{"identifier":"r"}}}]}',
    );
    for (const base of [fixture, small]) {
      for (let round = 0; round < 1_500; round++) {
        const bytes = [...base];
        for (let edits = 1 + random(3); edits > 0; edits--) {
          const at = random(bytes.length + 1);
          const byte = random(5) === 0 ? extra[random(extra.length)]! : alphabet[random(alphabet.length)]!;
          const how = random(3);
          if (how === 0) bytes.splice(at, 1);
          else if (how === 1) bytes.splice(at, 0, byte);
          else bytes[at] = byte;
        }
        agree(new Uint8Array(bytes), `mutation ${round}`);
        compared++;
      }
    }
  }
  assert.ok(compared >= 9_000);
});
