import assert from "node:assert/strict";
import { classifyFetchError, classifyStatus } from "./outcome.ts";
import { backoffDelay, MAX_RETRY_AFTER_MS, parseRetryAfter, retryDelay } from "./backoff.ts";

Deno.test("classify: every status lands where the status sets of outcome.ts put it", () => {
  const expected: Array<[number[], string]> = [
    [[200, 201, 202, 204, 299], "delivered"],
    [[400, 409, 413, 415, 422], "rejected"],
    [[401, 403, 404, 405], "config-fault"],
    [[408, 425, 429, 500, 502, 503, 504, 599], "retry"],
    [[301, 302, 307, 308], "config-fault"],
    [[406, 410, 418, 451], "config-fault"],
  ];
  for (const [statuses, kind] of expected) {
    for (const status of statuses) assert.equal(classifyStatus(status).kind, kind, `status ${status}`);
  }
});

Deno.test("classify: Retry-After and diagnostics are carried", () => {
  assert.deepEqual(classifyStatus(503, undefined, 2000), {
    kind: "retry",
    status: 503,
    reason: "EventStore answered 503",
    retryAfterMs: 2000,
  });
  assert.deepEqual(
    classifyStatus(422, { logged: "Bundle.type must be '…'", full: "Bundle.type must be 'x'" }),
    {
      kind: "rejected",
      status: 422,
      reason: "EventStore answered 422: Bundle.type must be '…'",
      diagnostics: "Bundle.type must be 'x'",
    },
  );
});

Deno.test("classify: a 415 without a body says which media types the EventStore takes", () => {
  assert.match(
    (classifyStatus(415) as { reason: string }).reason,
    /^EventStore answered 415 \(the EventStore takes only Content-Type application\/fhir\+json, bare or with fhirVersion=4\.0;/,
  );
  assert.equal(
    (classifyStatus(415, { logged: "XML is not spoken here", full: "XML is not spoken here" }) as {
      reason: string;
    }).reason,
    "EventStore answered 415: XML is not spoken here",
  );
});

Deno.test("classify: fetch errors", () => {
  assert.equal(classifyFetchError(new TypeError("error sending request"), 1000)?.kind, "retry");
  assert.match(
    classifyFetchError(new DOMException("Signal timed out.", "TimeoutError"), 1500)!.reason,
    /within 1500 ms/,
  );
  assert.equal(classifyFetchError(new DOMException("aborted", "AbortError"), 1000), undefined);
  assert.equal(classifyFetchError(new RangeError("bug"), 1000), undefined);
});

Deno.test("classify: a TLS certificate failure is a configuration fault that says what to check", () => {
  // As Deno's fetch reports them: the rustls detail in the message, or in the cause.
  const untrusted = classifyFetchError(
    new TypeError(
      "error sending request for url (https://es.test/): client error (Connect): invalid peer certificate: UnknownIssuer",
    ),
    1000,
  );
  assert.equal(untrusted?.kind, "config-fault");
  assert.match(untrusted!.reason, /not signed by a CA eventsink trusts \(check --eventstore-ca\)/);
  const refused = classifyFetchError(
    new TypeError("fetch failed", { cause: new Error("received fatal alert: CertificateRequired") }),
    1000,
    "the token endpoint https://login.test/token",
  );
  assert.equal(refused?.kind, "config-fault");
  assert.match(refused!.reason, /^Cannot connect to the token endpoint https:\/\/login\.test\/token: TLS: /);
  assert.match(refused!.reason, /check --eventstore-cert/);
  // rustls's newer texts: a certificate for another name, a CA certificate presented as the server's own.
  const cases: Array<[string, RegExp]> = [
    ['invalid peer certificate: certificate not valid for name "127.0.0.1"', /does not name the host/],
    [
      "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))",
      /presented a CA certificate as its own/,
    ],
  ];
  for (const [detail, expected] of cases) {
    const failure = classifyFetchError(
      new TypeError("client error (Connect)", { cause: new Error(detail) }),
      1000,
    );
    assert.equal(failure?.kind, "config-fault", detail);
    assert.match(failure!.reason, expected);
  }
});

Deno.test("backoff: full jitter below an exponential ceiling capped at max", () => {
  const policy = { initialMs: 100, maxMs: 1_000 };
  assert.equal(backoffDelay(0, policy, () => 0.999999), 99);
  assert.equal(backoffDelay(3, policy, () => 0.5), 400);
  assert.equal(backoffDelay(30, policy, () => 0.999999), 999);
  assert.equal(backoffDelay(5000, policy, () => 0.5), 500);
  assert.equal(backoffDelay(2, policy, () => 0), 0);
});

Deno.test("backoff: Retry-After wins, capped", () => {
  const policy = { initialMs: 100, maxMs: 1_000 };
  assert.equal(retryDelay(0, policy, 5_000, () => 0.5), 5_000);
  assert.equal(retryDelay(0, policy, 24 * 3_600_000, () => 0.5), MAX_RETRY_AFTER_MS);
  assert.equal(retryDelay(1, policy, undefined, () => 0.5), 100);
});

Deno.test("Retry-After: seconds and HTTP-date forms", () => {
  const now = new Date("2026-11-28T10:00:00Z");
  assert.equal(parseRetryAfter("120", now), 120_000);
  assert.equal(parseRetryAfter(" 0 ", now), 0);
  assert.equal(parseRetryAfter("Sat, 28 Nov 2026 10:00:30 GMT", now), 30_000);
  assert.equal(parseRetryAfter("Saturday, 28-Nov-26 10:01:00 GMT", now), 60_000);
  assert.equal(parseRetryAfter("Sat, 28 Nov 2026 09:00:00 GMT", now), 0, "a date in the past means now");
  for (const bad of [null, "", "-5", "1.5", "soon", "abc"]) {
    assert.equal(parseRetryAfter(bad, now), undefined, String(bad));
  }
});
