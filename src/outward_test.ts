/** Outward text: masked in every form, neutralised, and only then cut. */
import assert from "node:assert/strict";
import { bound, createRedactor, neutralise, presenter, presentLines, REDACTED } from "./outward.ts";
import { createLogger } from "./log.ts";

const SECRET = "CS~Secr3t/+ value";

Deno.test("redactor: masks configured secrets for good and the latest rotating tokens", () => {
  const redactor = createRedactor();
  redactor.add(SECRET);
  redactor.add("abc"); // too short to mask without garbling the log
  for (let i = 0; i < 10; i++) redactor.addRotating(`token-number-${i}`);
  assert.equal(redactor.apply(`a ${SECRET} b ${SECRET}`), `a ${REDACTED} b ${REDACTED}`);
  assert.equal(redactor.apply("abc"), "abc");
  assert.equal(redactor.apply("token-number-9 token-number-2"), `${REDACTED} ${REDACTED}`);
  assert.equal(
    redactor.apply("token-number-0"),
    "token-number-0",
    "the oldest rotating values are forgotten",
  );
});

Deno.test("redactor: a secret is masked url-encoded, form-encoded, in base64 and trimmed", () => {
  const redactor = createRedactor();
  redactor.add(`${SECRET}\n`);
  const base64 = btoa(SECRET);
  const echoes = [
    `client_secret=${encodeURIComponent(SECRET)}`,
    `client_secret=${new URLSearchParams({ x: SECRET }).toString().slice(2)}`,
    `Basic ${base64}`,
    `b64url ${base64.replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_")}`,
    `as read: ${SECRET}.`,
  ];
  for (const echo of echoes) {
    const masked = redactor.apply(echo);
    assert.ok(masked.includes(REDACTED) && !masked.includes("Secr3t") && !masked.includes(base64), masked);
  }
});

Deno.test("present: masks before it cuts, so that no prefix of a secret survives", () => {
  const redactor = createRedactor();
  redactor.add(SECRET);
  const present = presenter(redactor);
  const text = `${"x".repeat(290)}${SECRET}`;
  const shown = present(text, 300);
  assert.ok(!shown.includes("CS~Secr"), shown);
  assert.equal(shown, `${"x".repeat(290)}${REDACTED}`);
  assert.equal(present("y".repeat(5_000)).length, 2_000);
  assert.equal(bound("abcdef", 4), "abc…");
});

Deno.test("neutralise: no line break, escape or journald priority from the other side survives", () => {
  assert.equal(neutralise("a\nb\rc\td"), "a\\nb\\rc\\td");
  assert.equal(neutralise("\u001b[31mred\u001b[0m"), "\\x1b[31mred\\x1b[0m");
  assert.equal(neutralise("\u009bC1 \u2028 \u0000"), "\\x9bC1 \\u2028 \\x00");
  assert.equal(neutralise("<3>forged"), "\\<3>forged");
  assert.equal(neutralise("a <3> in the middle"), "a <3> in the middle");
  assert.equal(neutralise("Grüße, ø, 日本"), "Grüße, ø, 日本", "printable text stays as it is");
});

Deno.test("present: a report keeps its own lines, each presented", () => {
  const redactor = createRedactor();
  redactor.add(SECRET);
  assert.equal(
    presentLines(presenter(redactor), `OK  one\nFAIL two: ${SECRET}\u001b[2J`),
    `OK  one\nFAIL two: ${REDACTED}\\x1b[2J`,
  );
});

Deno.test("log: secrets are masked and peer text neutralised in messages and fields, text and JSON", () => {
  const redactor = createRedactor();
  redactor.add(SECRET);
  for (const format of ["text", "json"] as const) {
    const lines: string[] = [];
    const log = createLogger({
      level: "debug",
      format,
      write: (line) => lines.push(line),
      present: presenter(redactor),
    })
      .child({ context: `ctx ${SECRET}` });
    log.error(`failed with ${SECRET}\n2026-01-01T00:00:00.000Z ERROR forged`, {
      reason: `said ${SECRET}`,
      status: 401,
    });
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes("Secr3t"), lines[0]);
    assert.ok(!lines[0]!.includes("\n"), lines[0]);
    assert.equal(lines[0]!.split(REDACTED).length - 1, 3, lines[0]);
  }
});
