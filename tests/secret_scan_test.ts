/** The secret scan's own forms and search (support/secret_scan.ts), without eventsink. */
import assert from "node:assert/strict";
import { formEncode, scanText, secretForms } from "./support/secret_scan.ts";

const SECRET = "Zq8w~Secr3t/+ x!é";

function base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

Deno.test("secret scan: every form of a secret is found, and named by its first 4 characters only", () => {
  const forms = [
    SECRET,
    ` ${SECRET} `.trim(),
    "Zq8w~Secr3t%2F%2B%20x!%C3%A9%0A",
    encodeURIComponent(SECRET),
    "Zq8w%7ESecr3t%2F%2B+x%21%C3%A9",
    base64(SECRET),
    base64(SECRET).replace(/=+$/, ""),
    base64(SECRET).replaceAll("+", "-").replaceAll("/", "_"),
    base64(`${formEncode("client id")}:${formEncode(SECRET)}`),
    `${SECRET.slice(0, 12)}…`, // cut
  ];
  for (const form of forms) {
    const hits = scanText(`before ${form} after`, [SECRET, { id: "client id", secret: SECRET }]);
    assert.ok(hits.length > 0, `not found: ${form}`);
    assert.ok(hits.every((hit) => hit.secret === "Zq8w…" || hit.secret === "clie…"));
    assert.ok(hits.every((hit) => hit.index === 7));
  }
  assert.equal(formEncode("a b+~"), "a+b%2B%7E");
  assert.ok([...secretForms(SECRET).values()].includes(SECRET.slice(0, 12)));
});

Deno.test("secret scan: a masked or unrelated text has no hit; short forms are not looked for", () => {
  assert.deepEqual(scanText(`secret=[redacted] ${SECRET.slice(0, 7)}`, [SECRET]), []);
  assert.deepEqual(scanText("abc abc abc", ["abc"]), []);
  assert.deepEqual(scanText("", [SECRET]), []);
});
