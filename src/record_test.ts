import assert from "node:assert/strict";
import { decodeUtf8 } from "./record.ts";

const strict = new TextDecoder("utf-8", { fatal: true });

Deno.test("decodeUtf8: answers as the strict decoder does, a real U+FFFD and a BOM included", () => {
  const inputs = [
    "",
    "application/fhir+json; fhirVersion=4.0",
    "Kåre 日本 😀",
    "a real \ufffd replacement character",
    "\ufeffafter a BOM",
  ].map((text) => new TextEncoder().encode(text));
  const invalid = [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xff]];
  inputs.push(...invalid.map((bytes) => new Uint8Array([0x61, ...bytes, 0x62])));
  inputs.push(new Uint8Array([0xef, 0xbf, 0xbd, 0x80])); // a real U+FFFD, then an invalid byte
  for (const bytes of inputs) {
    let expected: string | undefined;
    try {
      expected = strict.decode(bytes);
    } catch {
      expected = undefined;
    }
    assert.equal(decodeUtf8(bytes), expected, `${[...bytes]}`);
  }
  assert.equal(decodeUtf8(new Uint8Array([0x61, 0x80])), undefined);
});
