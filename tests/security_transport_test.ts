/**
 * Transport security, black-box: eventsink as its own process against hostile peers (tests/support/
 * hostile_tls.ts) — servers whose certificate is for another host, is the CA itself or is trusted by no
 * one, a plain-http EventStore off this machine, token endpoints whose answer never ends or whose URL
 * carries a password — and against odd files and values given as options. Each fault is a configuration
 * fault found at start-up (exit 2, a message saying what to check, nothing sent) or, for the EventStore,
 * one that holds the records rather than skipping them. Numbers in the test names are the items.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { committedOffsets, createTopic, produce, testBroker, uniqueName } from "./support/broker.ts";
import {
  assertNoSecretPrinted,
  type EventsinkProcess,
  spawnEventsink,
  spawnRaw,
} from "./support/eventsink_process.ts";
import {
  type HostilePki,
  makeHostilePki,
  MIB,
  type RecordingServer,
  startEndlessServer,
  startRecordingServer,
} from "./support/hostile_tls.ts";
import { openPipeline, type Pipeline, validMessages, waitUntil } from "./support/pipeline.ts";
import { registerSecrets } from "./support/secret_scan.ts";

const CLIENT_ID = "eventsink-transport";
const SECRET = `${crypto.randomUUID()}-transport-secret`;
const STATIC_TOKEN = `${crypto.randomUUID()}-transport-token`;
const HEADER_VALUE = `${crypto.randomUUID()}-api-key`;
const URL_PASSWORD = "pa55word";
const HEADER_SECRET = "S3cretValue9";
const URL_SECRET = "S3cretPw9";
const SECRET_ENV = { EVENTSINK_OAUTH_CLIENT_SECRET: SECRET };
const SECRETS = [SECRET, STATIC_TOKEN, HEADER_VALUE, URL_PASSWORD, HEADER_SECRET, URL_SECRET];
registerSecrets(...SECRETS);

let pki: HostilePki;
/** A topic that exists, for the tests that expect eventsink to stop before it consumes. */
let usageTopic: string;

Deno.test.beforeAll(async () => {
  pki = await makeHostilePki();
  usageTopic = uniqueName("transport-usage");
  await createTopic(testBroker().bootstrap, usageTopic, 1);
});

Deno.test.afterAll(async () => {
  await pki?.close();
});

/** OAuth2 flags for a token endpoint (the secret comes from {@link SECRET_ENV}). */
function oauthArgs(tokenUrl: string): string[] {
  return ["--oauth-token-url", tokenUrl, "--oauth-client-id", CLIENT_ID];
}

async function write(p: Pipeline, count: number): Promise<void> {
  const messages = await validMessages(count);
  await produce(p.bootstrap, p.topic, messages.map((m) => ({ key: m.messageId, value: m.bytes })));
}

/**
 * The exit code once eventsink has exited, or undefined when it still runs after `timeoutMs` (or when
 * `stopWaiting` says there is no point waiting longer: what the test guards against has happened).
 */
async function exitWithin(
  sink: EventsinkProcess,
  timeoutMs: number,
  stopWaiting: () => boolean = () => false,
): Promise<number | undefined> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  while (Date.now() < deadline && !stopWaiting()) {
    const code = await sink.exited(200).catch(() => undefined);
    if (code !== undefined) return code;
  }
  const code = await sink.exited(100).catch(() => undefined);
  if (code === undefined) runningFor.set(sink, Date.now() - started);
  return code;
}

/** How long a process had been watched when {@link exitWithin} stopped waiting for it. */
const runningFor = new WeakMap<EventsinkProcess, number>();

/** How an exit came out, for assertion messages. */
function exitText(sink: EventsinkProcess, code: number | undefined): string {
  const seconds = ((runningFor.get(sink) ?? 0) / 1000).toFixed(1);
  return code === undefined ? `still running after ${seconds} s` : `exit ${code}`;
}

/** The end of what eventsink printed, secrets masked, for assertion messages. */
function tail(sink: EventsinkProcess, lines = 12): string {
  let text = sink.output();
  for (const secret of SECRETS) text = text.replaceAll(secret, "<secret>");
  return text.trimEnd().split("\n").slice(-lines).map((line) => `  | ${line.slice(0, 400)}`).join("\n");
}

/** What a recording server received, without the secrets, for assertion messages. */
function received(server: RecordingServer): string {
  return JSON.stringify(
    server.requests().map((r) => ({
      method: r.method,
      path: r.path,
      authorization: r.authorization === undefined ? "none" : "present",
      clientSecretInBody: new URLSearchParams(r.body).has("client_secret"),
    })),
  );
}

/** Asserts the exit code and that eventsink printed `expected`, showing the output either way. */
function assertExit(
  sink: EventsinkProcess,
  code: number | undefined,
  timeoutMs: number,
  expected: RegExp[],
): void {
  assert.equal(
    code,
    2,
    `expected exit 2 within ${timeoutMs / 1000} s, got ${exitText(sink, code)}:\n${tail(sink)}`,
  );
  for (const pattern of expected) {
    assert.match(sink.output(), pattern, `output should match ${pattern}:\n${tail(sink)}`);
  }
}

/**
 * Waits until eventsink ends, or `sent` turns positive, and asserts that `sent` stayed 0 (what a server
 * must never get; `what` says what it got), that eventsink exited 2 matching `expected`, and that it printed
 * no secret.
 */
async function assertRefused(
  sink: EventsinkProcess,
  timeoutMs: number,
  expected: RegExp[],
  sent: () => number,
  what: () => string,
): Promise<void> {
  try {
    const code = await exitWithin(sink, timeoutMs, () => sent() > 0);
    assert.equal(sent(), 0, what());
    assertExit(sink, code, timeoutMs, expected);
    assertNoSecretPrinted(SECRETS, sink.output());
  } finally {
    await sink.close();
  }
}

Deno.test("transport (6): NODE_TLS_REJECT_UNAUTHORIZED=0 ends eventsink (exit 2) before it sends credentials to a server nobody trusts", async (t) => {
  const TIMEOUT = 15_000;
  await t.step("OAuth2: token endpoint and EventStore on a self-signed server", async () => {
    await using p = await openPipeline(1);
    await using hostile = await startRecordingServer({ tls: pki.selfSigned, secrets: [SECRET] });
    await write(p, 1);
    const sink = await spawnEventsink({
      ...p,
      store: { url: hostile.url },
      args: oauthArgs(`${hostile.url}/token`),
      env: { ...SECRET_ENV, NODE_TLS_REJECT_UNAUTHORIZED: "0" },
    });
    await assertRefused(
      sink,
      TIMEOUT,
      [/NODE_TLS_REJECT_UNAUTHORIZED/],
      () => hostile.credentialed().length,
      () => `the untrusted server received credentials: ${received(hostile)}`,
    );
    registerSecrets(...hostile.issuedTokens());
  });
  await t.step("a static token: the EventStore on a self-signed server, records waiting", async () => {
    await using p = await openPipeline(1);
    await using hostile = await startRecordingServer({ tls: pki.selfSigned, secrets: [STATIC_TOKEN] });
    await write(p, 2);
    const sink = await spawnEventsink({
      ...p,
      store: { url: hostile.url },
      env: { EVENTSINK_EVENTSTORE_TOKEN: STATIC_TOKEN, NODE_TLS_REJECT_UNAUTHORIZED: "0" },
    });
    await assertRefused(
      sink,
      TIMEOUT,
      [/NODE_TLS_REJECT_UNAUTHORIZED/],
      () => hostile.credentialed().length,
      () => `the untrusted server received the bearer token: ${received(hostile)}`,
    );
  });
});

Deno.test("transport (7): --eventstore-headers to a plain-http EventStore off localhost is refused at start-up (exit 2); nothing is sent", async () => {
  const TIMEOUT = 15_000;
  await using p = await openPipeline(1);
  // Not localhost by name or by the addresses eventsink treats as local, though Linux routes it to loopback.
  await using store = await startRecordingServer({ hostname: "127.0.0.2", secrets: [HEADER_VALUE] });
  assert.match(store.url, /^http:\/\/127\.0\.0\.2:\d+$/);
  await write(p, 2);
  const sink = await spawnEventsink({
    ...p,
    store: { url: store.url },
    args: ["--eventstore-headers", `X-Api-Key=${HEADER_VALUE}`],
  });
  await assertRefused(
    sink,
    TIMEOUT,
    [/--eventstore-headers/, /https/],
    () => store.requests().length,
    () =>
      `the plain-http EventStore received ${store.requests().length} request(s), ` +
      `${store.credentialed().length} with the X-Api-Key value`,
  );
});

Deno.test("transport (9): a token endpoint or discovery document whose 200 answer never ends: exit 2 at 1 MiB", async (t) => {
  const TIMEOUT = 20_000;
  const LIMIT = 64 * MIB;
  const endless = async (prefix: string, args: (url: string) => string[]) => {
    await using p = await openPipeline(1);
    await using server = startEndlessServer({ prefix });
    const sink = await spawnEventsink({ ...p, args: args(server.url), env: SECRET_ENV });
    try {
      const code = await exitWithin(sink, TIMEOUT, () => server.bytesSent() >= LIMIT);
      const sent = server.bytesSent();
      assert.ok(server.requests() >= 1, `the endless server was never asked:\n${tail(sink)}`);
      assert.ok(
        sent < LIMIT,
        `eventsink read ${Math.round(sent / MIB)} MiB of the endless answer and was still reading ` +
          `(${exitText(sink, code)}):\n${tail(sink)}`,
      );
      assertExit(sink, code, TIMEOUT, [/1 MiB/]);
    } finally {
      await sink.close();
    }
  };
  await t.step(
    "the token endpoint",
    () =>
      endless(
        '{"token_type":"Bearer","expires_in":3600,"access_token":"',
        (url) => oauthArgs(`${url}/token`),
      ),
  );
  await t.step("the OpenID Connect discovery document", () =>
    endless(
      '{"issuer":"http://127.0.0.1","token_endpoint":"http://127.0.0.1:9/token","padding":"',
      (url) => [
        ...["--oauth-discovery-url", `${url}/.well-known/openid-configuration`],
        ...["--oauth-client-id", CLIENT_ID],
      ],
    ));
});

Deno.test("transport (11): a user name and password in a token endpoint URL are refused (exit 2) and never printed", async (t) => {
  const TIMEOUT = 15_000;
  await t.step("in --oauth-token-url", async () => {
    await using p = await openPipeline(1);
    await using token = await startRecordingServer({ secrets: [SECRET, URL_PASSWORD] });
    const sink = await spawnEventsink({
      ...p,
      args: oauthArgs(`http://user:${URL_PASSWORD}@127.0.0.1:${token.port}/token`),
      env: SECRET_ENV,
    });
    await assertRefused(
      sink,
      TIMEOUT,
      [/user name or password/i],
      () => token.requests().length,
      () => `the token endpoint was asked: ${received(token)}`,
    );
    registerSecrets(...token.issuedTokens());
  });
  await t.step("in the token_endpoint of a discovery document", async () => {
    await using p = await openPipeline(1);
    await using token = await startRecordingServer({ secrets: [SECRET, URL_PASSWORD] });
    const endpoint = `http://user:${URL_PASSWORD}@127.0.0.1:${token.port}/token`;
    await using discovery = await startRecordingServer({
      answer: () => Response.json({ issuer: "http://127.0.0.1", token_endpoint: endpoint }),
    });
    const sink = await spawnEventsink({
      ...p,
      args: [
        ...["--oauth-discovery-url", `${discovery.url}/.well-known/openid-configuration`],
        ...["--oauth-client-id", CLIENT_ID],
      ],
      env: SECRET_ENV,
    });
    await assertRefused(
      sink,
      TIMEOUT,
      [],
      () => token.requests().length,
      () => `the token endpoint the document named was asked: ${received(token)}`,
    );
    assert.ok(discovery.requests().length >= 1, `the discovery document was never asked:\n${tail(sink)}`);
    registerSecrets(...token.issuedTokens());
  });
});

Deno.test("transport (12): a certificate for another host, or the CA itself as the server's certificate, is a configuration fault", async (t) => {
  const TIMEOUT = 20_000;
  const atTokenEndpoint = async (certificate: "wrongHost" | "caAsLeaf", expected: RegExp) => {
    await using p = await openPipeline(1);
    await using hostile = await startRecordingServer({ tls: pki[certificate], secrets: [SECRET] });
    const sink = await spawnEventsink({
      ...p,
      args: [...oauthArgs(`${hostile.url}/token`), "--eventstore-ca", pki.ca],
      env: SECRET_ENV,
    });
    try {
      const code = await exitWithin(sink, TIMEOUT);
      assert.equal(hostile.requests().length, 0, `the token endpoint got a request: ${received(hostile)}`);
      assertExit(sink, code, TIMEOUT, [expected]);
    } finally {
      await sink.close();
    }
  };
  await t.step(
    "token endpoint: signed by the trusted CA, but for another host name",
    () => atTokenEndpoint("wrongHost", /does not name the host/),
  );
  await t.step(
    "token endpoint: the trusted CA's own certificate as the server's",
    () => atTokenEndpoint("caAsLeaf", /CA certificate/i),
  );
  await t.step(
    "EventStore over --http2 with a certificate for another host: held, not given up on",
    async () => {
      await using p = await openPipeline(1);
      await using hostile = await startRecordingServer({ tls: pki.wrongHost, secrets: [STATIC_TOKEN] });
      await write(p, 2);
      const sink = await spawnEventsink({
        ...p,
        store: { url: hostile.url },
        args: [
          ...["--http2", "--eventstore-ca", pki.ca],
          // Giving up on transient failures after a second must not apply: a configuration fault is never given up.
          ...["--retry-give-up", "1s", "--shutdown-grace", "1s"],
        ],
        env: { EVENTSINK_EVENTSTORE_TOKEN: STATIC_TOKEN },
      });
      try {
        await sink.waitForLog((l) => l.msg.includes("starting"), 15_000);
        await new Promise((resolve) => setTimeout(resolve, 8_000));
        assert.equal(hostile.requests().length, 0, `the EventStore got a request: ${received(hostile)}`);
        const settled = sink.lines.filter((l) =>
          l.msg.startsWith("Skipped") || l.msg.startsWith("Wrote a rejected message")
        );
        assert.deepEqual(
          settled.map((l) => `${l.msg} (${l.reason ?? ""})`),
          [],
          "nothing may be skipped or dead-lettered",
        );
        const committed = await committedOffsets(p.bootstrap, p.group, p.topic);
        assert.ok(
          ![...committed.values()].some((offset) => offset > 0),
          `nothing may be committed: ${JSON.stringify([...committed])}`,
        );
        assert.match(
          sink.output(),
          /does not name the host/,
          `the log should name the host-name problem:\n${tail(sink)}`,
        );
      } finally {
        await sink.close();
      }
    },
  );
});

/** Usage tests: eventsink with just enough options to start. */
function usageArgs(extra: string[]): string[] {
  return [
    ...["--brokers", testBroker().bootstrap, "--topic", usageTopic],
    ...["--eventstore-url", "http://127.0.0.1:9"],
    ...extra,
  ];
}

/** A usage error: exit 2 within `timeoutMs`, and no stack trace. */
async function usageError(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<EventsinkProcess> {
  const sink = await spawnRaw(usageArgs(args), env);
  try {
    const code = await exitWithin(sink, timeoutMs);
    assert.equal(
      code,
      2,
      `expected exit 2 within ${timeoutMs / 1000} s, got ${exitText(sink, code)}:\n${tail(sink)}`,
    );
    assert.doesNotMatch(sink.output(), /^\s+at /m, `no stack trace:\n${tail(sink, 30)}`);
    return sink;
  } finally {
    await sink.close();
  }
}

Deno.test("usage: --oauth-discovery-url that is not an http(s) URL is a one-line usage error", async (t) => {
  for (const url of ["file:///etc/passwd", "file://127.0.0.1/etc/passwd", "ftp://localhost/discovery"]) {
    await t.step(url, async () => {
      const sink = await usageError(
        ["--oauth-discovery-url", url, "--oauth-client-id", CLIENT_ID],
        SECRET_ENV,
      );
      const lines = sink.output().split("\n").filter((line) =>
        line.trim() !== "" && !line.includes("--help")
      );
      assert.equal(lines.length, 1, `one line of usage error:\n${tail(sink, 30)}`);
      assert.match(lines[0]!, /--oauth-discovery-url/);
    });
  }
});

Deno.test("usage: --eventstore-headers written Name: value is refused without printing the value", async () => {
  const sink = await usageError(["--eventstore-headers", `X-Api-Key: ${HEADER_SECRET}`]);
  assertNoSecretPrinted(SECRETS, sink.output());
  assert.match(sink.output(), /--eventstore-headers/);
});

Deno.test("usage: an --eventstore-url that does not parse is refused without printing its password", async () => {
  const sink = await spawnRaw([
    ...["--brokers", testBroker().bootstrap, "--topic", usageTopic],
    ...["--eventstore-url", `http://user:${URL_SECRET}@[bad`],
  ]);
  try {
    const code = await exitWithin(sink, 15_000);
    assertNoSecretPrinted(SECRETS, sink.output());
    assert.equal(code, 2, `expected exit 2, got ${exitText(sink, code)}:\n${tail(sink)}`);
    assert.match(sink.output(), /--eventstore-url/);
  } finally {
    await sink.close();
  }
});

/** `--eventstore-ca <path>`: eventsink must end with exit 2 within `timeoutMs` and say `expected`. */
async function caFileRefused(path: string, expected: RegExp, timeoutMs: number): Promise<void> {
  const sink = await spawnRaw([...usageArgs(["--eventstore-ca", path]), "--log-format", "json"]);
  try {
    const code = await exitWithin(sink, timeoutMs);
    assertExit(sink, code, timeoutMs, [expected]);
  } finally {
    await sink.close();
  }
}

Deno.test("ca file: /dev/zero as --eventstore-ca is refused at once as not a regular file", async () => {
  await caFileRefused("/dev/zero", /not a regular file/, 5_000);
});

Deno.test("ca file: a FIFO as --eventstore-ca is refused at once as not a regular file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "eventsink-fifo-" });
  const fifo = join(dir, "ca.pem");
  try {
    const made = await new Deno.Command("mkfifo", { args: [fifo], stdout: "null", stderr: "piped" }).output();
    assert.equal(made.code, 0, `mkfifo failed: ${new TextDecoder().decode(made.stderr)}`);
    await caFileRefused(fifo, /not a regular file/, 5_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ca file: a --eventstore-ca over 1 MiB is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "eventsink-bigca-" });
  const big = join(dir, "ca-bundle.pem");
  try {
    // Valid PEM throughout: only its size is wrong.
    const pem = await Deno.readTextFile(pki.ca);
    await Deno.writeTextFile(big, pem.repeat(Math.ceil((2 * MIB) / pem.length)));
    assert.ok((await Deno.stat(big)).size >= 2 * MIB);
    await caFileRefused(big, /1 MiB/, 10_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("oauth: a token endpoint issuing expires_in 0.001 is not asked for a token per delivery (5 s floor)", async () => {
  const issued = new Set<string>();
  await using token = await startRecordingServer({
    secrets: [SECRET],
    answer: () => {
      const value = `tiny-token-${crypto.randomUUID()}`;
      issued.add(value);
      return Response.json({ access_token: value, token_type: "Bearer", expires_in: 0.001 });
    },
  });
  await using p = await openPipeline(1, {
    authorize: (authorization) => issued.has(authorization?.replace(/^Bearer /, "") ?? ""),
  });
  const started = Date.now();
  const sink = await spawnEventsink({ ...p, args: oauthArgs(`${token.url}/token`), env: SECRET_ENV });
  try {
    // Records arrive for about 8 s, one a second.
    for (let round = 1; round <= 8; round++) {
      await write(p, 1);
      await waitUntil(`${round} stored`, () => p.store.stored().length >= round, 15_000);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    const tokenRequests = token.requests().filter((r) => r.method === "POST").length;
    // A token lives at least 5 s and is replaced a tenth of that before: one request per 4.5 s at most.
    const allowed = Math.floor((Date.now() - started) / 4_500) + 1;
    assert.ok(
      tokenRequests <= allowed,
      `${tokenRequests} token requests for 8 deliveries (at most ${allowed})`,
    );
  } finally {
    await sink.close();
    registerSecrets(...issued);
  }
});
