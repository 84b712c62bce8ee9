/**
 * Authentication to the EventStore end to end: navikt's mock-oauth2-server issues the tokens, the
 * stand-in EventStore verifies each one (signature against the server's JWKS, issuer, audience), and
 * eventsink runs as its own process with its permission set, against the shared Kafka broker.
 */
import assert from "node:assert/strict";
import { committedOffsets, produce } from "./support/broker.ts";
import {
  assertNoSecretPrinted,
  endpointUrl,
  type EventsinkProcess,
  spawnEventsink,
} from "./support/eventsink_process.ts";
import { registerBasic, registerSecrets } from "./support/secret_scan.ts";
import {
  EVENTSTORE_SCOPE,
  type Issuer,
  type OAuthServer,
  SHORT_TOKEN_SECONDS,
  startOAuthServer,
} from "./support/oauth_server.ts";
import {
  type Message,
  openPipeline,
  type Pipeline,
  validMessages,
  waitUntilCommittedToEnd,
} from "./support/pipeline.ts";

// Random characters first: the secret scan also looks for a secret's first 12 characters.
const SECRET = `${crypto.randomUUID()}-client-secret`;
const WRONG_SECRET = `${crypto.randomUUID()}-wrong-secret`;
const STATIC_TOKEN = `${crypto.randomUUID()}-static-token`;
registerSecrets(SECRET, WRONG_SECRET, STATIC_TOKEN);
const SECRET_ENV = { EVENTSINK_OAUTH_CLIENT_SECRET: SECRET };

let oauth: OAuthServer;

Deno.test.beforeAll(async () => {
  oauth = await startOAuthServer({});
});

Deno.test.afterAll(async () => {
  await oauth?.close();
});

/** A client id of its own for each test, so that token requests can be counted per test. */
function newClient(): string {
  const clientId = `eventsink-${crypto.randomUUID().slice(0, 8)}`;
  oauth.setClient(clientId, SECRET);
  registerBasic(clientId, SECRET);
  return clientId;
}

function tokenRequestsOf(clientId: string) {
  return oauth.tokenRequests().filter((request) => request.clientId === clientId);
}

/** Flags for OAuth2 with the token endpoint of `issuer`. */
function oauthArgs(issuer: Issuer, clientId: string): string[] {
  return [
    ...["--oauth-token-url", oauth.tokenUrl(issuer), "--oauth-client-id", clientId],
    ...["--oauth-scope", EVENTSTORE_SCOPE],
  ];
}

async function write(p: Pipeline, messages: Message[]): Promise<void> {
  await produce(p.bootstrap, p.topic, messages.map((m) => ({ key: m.messageId, value: m.bytes })));
}

function allCommitted(p: Pipeline): Promise<void> {
  return waitUntilCommittedToEnd(p.bootstrap, p.group, p.topic);
}

async function stop(sink: EventsinkProcess): Promise<void> {
  sink.signal("SIGTERM");
  assert.equal(await sink.exited(), 0);
}

Deno.test("oauth: the original's Azure variables; tokens verified by the EventStore; one token request for many deliveries", async () => {
  await using p = await openPipeline(3, { authorize: oauth.verifier("default") });
  const clientId = newClient();
  await write(p, await validMessages(30));
  const sink = await spawnEventsink({
    ...p,
    env: {
      AZURE_APP_WELL_KNOWN_URL: oauth.discoveryUrl("default"),
      AZURE_APP_CLIENT_ID: clientId,
      AZURE_APP_CLIENT_SECRET: SECRET,
      HOPS_EVENTSTORE_SCOPE: EVENTSTORE_SCOPE,
    },
  });
  try {
    await p.store.waitForStored(30, { timeoutMs: 30_000 });
    await allCommitted(p);
    assert.deepEqual(
      p.store.stats().byStatus,
      { "202": 30 },
      "every request carried a token the store accepted",
    );
    const requests = tokenRequestsOf(clientId);
    assert.equal(requests.length, 1, "one token served all 30 deliveries across 3 partitions");
    assert.equal(requests[0]!.clientAuth, "client_secret_post");
    const metrics = await (await fetch(`${await endpointUrl(sink)}/metrics`)).text();
    assert.match(metrics, /^eventsink_oauth_tokens_total 1$/m, "the metric counts the one token");
    await stop(sink);
  } finally {
    await sink.close();
  }
});

Deno.test("oauth: client_secret_basic with the secret in a file; tokens renewed before they expire", async () => {
  await using p = await openPipeline(2, { authorize: oauth.verifier("short") });
  const clientId = newClient();
  const secretFile = await Deno.makeTempFile({ prefix: "eventsink-secret-" });
  await Deno.writeTextFile(secretFile, `${SECRET}\n`);
  const messages = await validMessages(12);
  const sink = await spawnEventsink({
    ...p,
    args: [
      ...oauthArgs("short", clientId),
      ...["--oauth-client-auth", "client_secret_basic", "--oauth-client-secret-file", secretFile],
    ],
  });
  try {
    // Three rounds, each after the previous round's token has expired.
    for (const [round, start] of [0, 4, 8].entries()) {
      if (round > 0) await new Promise((resolve) => setTimeout(resolve, SHORT_TOKEN_SECONDS * 1_000 + 500));
      await write(p, messages.slice(start, start + 4));
      await p.store.waitForStored(start + 4, { timeoutMs: 30_000 });
    }
    await allCommitted(p);
    assert.equal(p.store.stats().byStatus["401"], undefined, "no expired token was ever sent");
    const requests = tokenRequestsOf(clientId);
    assert.ok(requests.length >= 3 && requests.length <= 6, `${requests.length} token requests`);
    const metrics = await (await fetch(`${await endpointUrl(sink)}/metrics`)).text();
    assert.match(
      metrics,
      new RegExp(`^eventsink_oauth_tokens_total ${requests.length}$`, "m"),
      "renewals counted",
    );
    assert.ok(requests.every((r) => r.clientAuth === "client_secret_basic" && r.status === 200));
    await stop(sink);
  } finally {
    await sink.close();
    await Deno.remove(secretFile);
  }
});

Deno.test("oauth: a token the EventStore refuses is replaced once for every waiting delivery", async () => {
  const verify = oauth.verifier("default");
  let revoked: string | undefined;
  // The first token eventsink shows is revoked, as after a key rotation at the EventStore.
  const authorize = (authorization: string | null) => {
    revoked ??= authorization ?? undefined;
    return authorization === revoked ? false : verify(authorization);
  };
  await using p = await openPipeline(3, { authorize });
  const clientId = newClient();
  await write(p, await validMessages(9));
  const sink = await spawnEventsink({ ...p, args: oauthArgs("default", clientId), env: SECRET_ENV });
  try {
    await p.store.waitForStored(9, { timeoutMs: 30_000 });
    await allCommitted(p);
    const refused = p.store.stats().byStatus["401"] ?? 0;
    assert.ok(
      refused >= 1 && refused <= 3,
      `${refused} deliveries with the revoked token (one per partition at most)`,
    );
    assert.equal(tokenRequestsOf(clientId).length, 2, "the first token, and one replacement shared by all");
    assert.ok(!sink.lines.some((l) => l.msg.startsWith("Skipped")), "nothing skipped");
    await stop(sink);
  } finally {
    await sink.close();
  }
});

Deno.test("oauth: a wrong client secret ends eventsink at start-up with a clear message; nothing is consumed", async () => {
  await using p = await openPipeline(1, { authorize: oauth.verifier("default") });
  const clientId = newClient();
  await write(p, await validMessages(2));
  const sink = await spawnEventsink({
    ...p,
    args: oauthArgs("default", clientId),
    env: { EVENTSINK_OAUTH_CLIENT_SECRET: WRONG_SECRET },
  });
  try {
    assert.equal(await sink.exited(), 2);
    const line = sink.lines.find((l) => l.msg.startsWith("Cannot start"));
    assert.match(
      line?.msg ?? sink.output(),
      /^Cannot start: The token endpoint http:\/\/127\.0\.0\.1:\d+\/default\/token refused eventsink's client credentials: check --oauth-client-id and the client secret \(401 invalid_client/,
    );
    assert.equal(p.store.requests().length, 0);
    assert.deepEqual(
      [...(await committedOffsets(p.bootstrap, p.group, p.topic)).values()].filter((o) => o >= 0),
      [],
    );
  } finally {
    await sink.close();
  }
});

Deno.test("oauth: credentials refused while running: a configuration fault, nothing skipped, delivered once they work again", async () => {
  await using p = await openPipeline(1, { authorize: oauth.verifier("short") });
  const clientId = newClient();
  const messages = await validMessages(5);
  await write(p, messages.slice(0, 2));
  const sink = await spawnEventsink({
    ...p,
    args: oauthArgs("short", clientId),
    env: SECRET_ENV,
  });
  try {
    await p.store.waitForStored(2, { timeoutMs: 30_000 });
    oauth.setClient(clientId, null); // the secret is rotated away under the running eventsink
    await new Promise((resolve) => setTimeout(resolve, SHORT_TOKEN_SECONDS * 1_000 + 500)); // its token expires
    await write(p, messages.slice(2));
    const fault = await sink.waitForLog((l) =>
      l.level === "error" && String(l.reason).includes("invalid_client")
    );
    assert.match(fault.msg, /^Configuration fault/);
    assert.match(String(fault.reason), /refused eventsink's client credentials: check --oauth-client-id/);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(p.store.stored().length, 2, "nothing delivered without a token");
    assert.ok(!sink.lines.some((l) => l.msg.startsWith("Skipped")), "nothing skipped");
    assert.equal(
      (await committedOffsets(p.bootstrap, p.group, p.topic)).get(0),
      2,
      "held at the first undelivered",
    );
    oauth.setClient(clientId, SECRET);
    await p.store.waitForStored(5, { timeoutMs: 30_000 });
    await allCommitted(p);
    await stop(sink);
  } finally {
    await sink.close();
  }
});

Deno.test("oauth: a token endpoint that is down is retried until it is back", async () => {
  await using p = await openPipeline(2, { authorize: oauth.verifier("default") });
  const clientId = newClient();
  await write(p, await validMessages(4));
  oauth.outage(true);
  let sink: EventsinkProcess | undefined;
  try {
    sink = await spawnEventsink({
      ...p,
      args: oauthArgs("default", clientId),
      env: SECRET_ENV,
    });
    const warning = await sink.waitForLog((l) => l.msg.startsWith("No EventStore token yet"));
    assert.match(String(warning.reason), /The token endpoint .* answered 503/);
    await sink.waitForLog((l) =>
      l.msg === "Delivery failed, will retry" && /answered 503/.test(String(l.reason))
    );
    assert.equal(p.store.requests().length, 0);
    oauth.outage(false);
    await p.store.waitForStored(4, { timeoutMs: 30_000 });
    await allCommitted(p);
    assert.ok(!sink.lines.some((l) => l.msg.startsWith("Skipped")), "nothing skipped");
    await stop(sink);
  } finally {
    oauth.outage(false);
    await sink?.close();
  }
});

Deno.test("static token and extra headers", async () => {
  await using p = await openPipeline(1, { token: STATIC_TOKEN });
  await write(p, await validMessages(2));
  const sink = await spawnEventsink({
    ...p,
    args: ["--eventstore-headers", "X-Tenant=nav,x-client-version=2%2C1"],
    env: { EVENTSINK_EVENTSTORE_TOKEN: STATIC_TOKEN },
  });
  try {
    await p.store.waitForStored(2, { timeoutMs: 30_000 });
    for (const stored of p.store.stored()) {
      assert.equal(stored.headers["x-tenant"], "nav");
      assert.equal(stored.headers["x-client-version"], "2,1");
    }
    const started = sink.lines.find((l) => l.msg.includes("starting"))!;
    assert.equal(started.eventstoreToken, "[redacted] (env EVENTSINK_EVENTSTORE_TOKEN)");
    assert.equal(started.eventstoreHeaders, "x-tenant=[redacted],x-client-version=[redacted]");
    await stop(sink);
  } finally {
    await sink.close();
  }
});

Deno.test("auth: nothing eventsink printed in these tests holds a secret or a token", () => {
  const tokens = oauth.issuedTokens();
  assert.ok(tokens.length >= 6, `${tokens.length} tokens issued`);
  assertNoSecretPrinted([SECRET, WRONG_SECRET, STATIC_TOKEN, ...tokens]);
});
