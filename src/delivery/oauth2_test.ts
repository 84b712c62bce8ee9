import assert from "node:assert/strict";
import {
  classifyDiscoveryAnswer,
  classifyTokenAnswer,
  type OAuth2Client,
  tokenLifetimeMs,
  tokenRequest,
} from "./oauth2.ts";
import { Secret } from "../security/secrets.ts";

const CLIENT: OAuth2Client = {
  kind: "oauth2",
  endpoint: { tokenUrl: "https://login.test/token" },
  clientId: "eventsink app",
  clientSecret: new Secret("p@ss:word&more"),
  scope: "api://eventstore/.default",
  clientAuth: "client_secret_post",
};

Deno.test("token request: client_secret_post puts the credentials in the form", () => {
  const request = tokenRequest(CLIENT);
  const form = new URLSearchParams(request.body);
  assert.equal(form.get("grant_type"), "client_credentials");
  assert.equal(form.get("scope"), "api://eventstore/.default");
  assert.equal(form.get("client_id"), "eventsink app");
  assert.equal(form.get("client_secret"), "p@ss:word&more");
  assert.equal(request.headers.authorization, undefined);
  assert.equal(request.headers["content-type"], "application/x-www-form-urlencoded");
});

Deno.test("token request: client_secret_basic form-encodes id and secret before base64 (RFC 6749 §2.3.1)", () => {
  const request = tokenRequest({ ...CLIENT, clientAuth: "client_secret_basic", scope: undefined });
  const form = new URLSearchParams(request.body);
  assert.deepEqual([...form.keys()], ["grant_type"]);
  const [scheme, encoded] = request.headers.authorization!.split(" ");
  assert.equal(scheme, "Basic");
  assert.equal(atob(encoded!), "eventsink+app:p%40ss%3Aword%26more");
});

Deno.test("token answer: a token and its lifetime", () => {
  const answer = JSON.stringify({ access_token: "eyJ.token", token_type: "Bearer", expires_in: 3599 });
  assert.deepEqual(classifyTokenAnswer("https://login.test/token", 200, answer), {
    kind: "token",
    token: { value: "eyJ.token", lifetimeMs: 3_599_000 },
  });
  const noExpiry = classifyTokenAnswer("u", 200, JSON.stringify({ access_token: "t", token_type: "bearer" }));
  assert.deepEqual(noExpiry, { kind: "token", token: { value: "t", lifetimeMs: undefined } });
});

Deno.test("token answer: expires_in is held between 5 s and a day", () => {
  assert.equal(tokenLifetimeMs(0.001), 5_000);
  assert.equal(tokenLifetimeMs(-5), 5_000);
  assert.equal(tokenLifetimeMs(1e308), 86_400_000);
  assert.equal(tokenLifetimeMs("3600"), 3_600_000, "some endpoints send it as a string");
  for (const none of [undefined, null, "", "soon", Number.NaN]) {
    assert.equal(tokenLifetimeMs(none), undefined);
  }
});

Deno.test("token answer: a wrong secret is a configuration fault that says what to check", () => {
  const answer = JSON.stringify({
    error: "invalid_client",
    error_description: "AADSTS7000215: Invalid client secret.",
  });
  const result = classifyTokenAnswer("https://login.test/token", 401, answer);
  assert.equal(result.kind, "config-fault");
  assert.equal(
    (result as { reason: string }).reason,
    "The token endpoint https://login.test/token refused eventsink's client credentials: check --oauth-client-id " +
      "and the client secret (401 invalid_client: AADSTS7000215: Invalid client secret.)",
  );
  assert.match(
    (classifyTokenAnswer("u", 400, '{"error":"invalid_scope"}') as { reason: string }).reason,
    /--oauth-scope/,
  );
  assert.equal(classifyTokenAnswer("u", 404, "<html>").kind, "config-fault");
  assert.equal(classifyTokenAnswer("u", 200, "{}").kind, "config-fault");
  assert.equal(classifyTokenAnswer("u", 200, '{"access_token":"t","token_type":"mac"}').kind, "config-fault");
});

Deno.test("token answer: an endpoint that is unwell is transient, honouring Retry-After", () => {
  assert.deepEqual(classifyTokenAnswer("u", 503, "down", 5_000), {
    kind: "retry",
    status: 503,
    reason: "The token endpoint u answered 503",
    retryAfterMs: 5_000,
  });
  assert.equal(classifyTokenAnswer("u", 429, "").kind, "retry");
});

Deno.test("discovery: the token endpoint is read from the document; problems say what to check", () => {
  const document = "https://login.test/tenant/v2.0/.well-known/openid-configuration";
  assert.deepEqual(
    classifyDiscoveryAnswer(
      document,
      200,
      JSON.stringify({ token_endpoint: "https://login.test/tenant/token" }),
    ),
    { kind: "endpoint", tokenUrl: "https://login.test/tenant/token" },
  );
  assert.equal(classifyDiscoveryAnswer(document, 502, "").kind, "retry");
  assert.match(
    (classifyDiscoveryAnswer(document, 404, "") as { reason: string }).reason,
    /answered 404 \(check --oauth-discovery-url\)/,
  );
  assert.match(
    (classifyDiscoveryAnswer(document, 200, "{}") as { reason: string }).reason,
    /names no token_endpoint/,
  );
  assert.match(
    (classifyDiscoveryAnswer(document, 200, '{"token_endpoint":"http://login.test/token"}') as {
      reason: string;
    })
      .reason,
    /not https/,
  );
  const withPassword = classifyDiscoveryAnswer(
    document,
    200,
    '{"token_endpoint":"https://user:pa55word@login.test/token"}',
  ) as { kind: string; reason: string };
  assert.equal(withPassword.kind, "config-fault");
  assert.match(
    withPassword.reason,
    /must not carry a user name or password: https:\/\/\[redacted\]@login\.test/,
  );
  assert.ok(!withPassword.reason.includes("pa55word"), withPassword.reason);
  assert.match(
    (classifyDiscoveryAnswer(document, 200, '{"token_endpoint":"file:///etc/passwd"}') as { reason: string })
      .reason,
    /must be http or https, not file/,
  );
});
