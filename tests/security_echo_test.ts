/**
 * Peers that say back what eventsink sent them: an EventStore whose OperationOutcome quotes the request's
 * headers or body, a token endpoint whose error_description quotes the token request, and answers carrying
 * control characters and forged log lines. Whatever a peer says, eventsink must print no form of a secret
 * (raw, url- or form-encoded, base64, HTTP Basic, a prefix left by a cut), no patient data, and no line
 * that is not its own. Real broker, real eventsink processes; every secret is also registered for the
 * run's secret scan (support/secret_scan.ts).
 */
import assert from "node:assert/strict";
import { createTopic, produce, testBroker, uniqueName } from "./support/broker.ts";
import { type EventsinkProcess, spawnEventsink, spawnRaw } from "./support/eventsink_process.ts";
import {
  echoHeaders,
  filler,
  type HostilePeer,
  outcomeResponse,
  startEchoStore,
  startEchoTokenEndpoint,
  startHostilePeer,
  startTokenEndpoint,
} from "./support/hostile_peers.ts";
import { validMessages, waitUntil } from "./support/pipeline.ts";
import {
  describeHits,
  registerBasic,
  registerSecrets,
  scanText,
  type SecretEntry,
} from "./support/secret_scan.ts";
import { headerText, readTopic } from "./support/topic_reader.ts";

const REDACTED = "[redacted]";

/** Random characters first, so that a prefix of the secret can only be the secret's. */
function randomText(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return [...bytes].map((byte) => "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"[byte % 56]).join(
    "",
  );
}

/** Fails naming each secret found in `text` by its prefix and form only. */
function assertNoForms(text: string, secrets: Array<string | SecretEntry>, what: string): void {
  assert.ok(text.length > 0, `${what}: nothing to check`);
  const hits = scanText(text, secrets);
  assert.equal(hits.length, 0, `${what} holds a secret: ${describeHits(hits)}`);
}

/** A topic of its own on the shared broker, and a group name. */
async function freshTopic(partitions = 1): Promise<{ bootstrap: string; topic: string; group: string }> {
  const { bootstrap } = testBroker();
  const topic = uniqueName("echo");
  await createTopic(bootstrap, topic, partitions);
  return { bootstrap, topic, group: uniqueName("group") };
}

/** Runs eventsink (`check` or a run) to its end; its exit code and everything it printed. */
async function runToEnd(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; output: string }> {
  const process = await spawnRaw(args, env);
  try {
    return { code: await process.exited(60_000), output: process.output() };
  } finally {
    await process.close();
  }
}

function baseArgs(k: { bootstrap: string; topic: string; group: string }, storeUrl: string): string[] {
  return ["--brokers", k.bootstrap, "--topic", k.topic, "--group", k.group, "--eventstore-url", storeUrl];
}

function oauthArgs(tokenUrl: string, clientId: string): string[] {
  return [
    "--oauth-token-url",
    tokenUrl,
    "--oauth-client-id",
    clientId,
    "--oauth-scope",
    "api://eventstore/.default",
  ];
}

async function writeMessages(k: { bootstrap: string; topic: string }, count: number): Promise<void> {
  const messages = await validMessages(count);
  await produce(k.bootstrap, k.topic, messages.map((m) => ({ key: m.messageId, value: m.bytes })));
}

async function stop(sink: EventsinkProcess): Promise<void> {
  sink.signal("SIGTERM");
  assert.equal(await sink.exited(), 0, "stopped cleanly");
}

Deno.test("echo (1): check prints no form of the token, an extra header's value or the client secret", async (t) => {
  const k = await freshTopic();
  await t.step("static token and X-Api-Key, the EventStore's 401 quoting every header", async () => {
    const token = `${randomText(24)}-static`;
    const apiKey = `${randomText(20)}~key`;
    registerSecrets(token, apiKey);
    await using store = startEchoStore({
      status: 401,
      diagnostics: (r) => `${echoHeaders(r, ["authorization", "x-api-key"])}; all: ${echoHeaders(r)}`,
    });
    const { code, output } = await runToEnd(
      ["check", ...baseArgs(k, store.url), "--eventstore-headers", `X-Api-Key=${apiKey}`],
      { EVENTSINK_EVENTSTORE_TOKEN: token },
    );
    assert.ok(store.requests().length >= 1, "the store was asked");
    assertNoForms(output, [token, apiKey], "the check's report");
    assert.equal(code, 1, output);
    assert.match(output, /FAIL +EventStore .*401/, output);
    assert.ok(output.includes(REDACTED), `the masked values read ${REDACTED}:\n${output}`);
  });
  await t.step("OAuth2 client_secret_post, the token endpoint's 401 quoting the secret", async () => {
    const clientId = `es-${randomText(8)}`;
    const secret = `${randomText(20)}~/Secr3t`;
    registerBasic(clientId, secret);
    await using tokenEndpoint = startEchoTokenEndpoint();
    await using store = startEchoStore({ status: 200 });
    const { code, output } = await runToEnd(
      ["check", ...baseArgs(k, store.url), ...oauthArgs(tokenEndpoint.tokenUrl, clientId)],
      { EVENTSINK_OAUTH_CLIENT_SECRET: secret },
    );
    assert.ok(tokenEndpoint.requests().length >= 1, "the token endpoint was asked");
    assertNoForms(output, [secret, { id: clientId, secret }], "the check's report");
    assert.equal(code, 1, output);
  });
});

Deno.test("echo (2): a dead letter's reason holds no form of the token or an extra header's value", async () => {
  const k = await freshTopic();
  const deadLetterTopic = uniqueName("dead");
  await createTopic(k.bootstrap, deadLetterTopic, 1);
  const token = `${randomText(24)}-static`;
  const apiKey = `${randomText(20)}~key`;
  registerSecrets(token, apiKey);
  await using store = startEchoStore({
    status: 422,
    diagnostics: (r) => `Rejected: ${echoHeaders(r, ["authorization", "x-api-key"])}`,
  });
  await writeMessages(k, 1);
  const sink = await spawnEventsink({
    ...k,
    store,
    args: ["--dead-letter-topic", deadLetterTopic, "--eventstore-headers", `X-Api-Key=${apiKey}`],
    env: { EVENTSINK_EVENTSTORE_TOKEN: token },
  });
  try {
    await sink.waitForLog((l) => l.msg === "Wrote a rejected message to the dead-letter topic");
    await stop(sink);
  } finally {
    await sink.close();
  }
  const letters = await readTopic(k.bootstrap, deadLetterTopic);
  assert.equal(letters.length, 1, "dead-lettered");
  const reason = headerText(letters[0]!, "eventsink.error.reason") ?? "";
  assertNoForms(reason, [token, apiKey], "eventsink.error.reason");
  assertNoForms(sink.output(), [token, apiKey], "eventsink's output");
  assert.match(reason, /422/);
  assert.ok(reason.includes(REDACTED), `the masked values read ${REDACTED}: ${reason}`);
});

Deno.test("echo (3): retries of a 503 quoting X-Api-Key log no form of its value", async () => {
  const k = await freshTopic();
  const apiKey = `${randomText(20)}~key`;
  registerSecrets(apiKey);
  await using store = startEchoStore({
    status: (n) => (n <= 3 ? 503 : 202),
    diagnostics: (r) => `Service unavailable for ${echoHeaders(r, ["x-api-key"])}`,
  });
  await writeMessages(k, 1);
  const sink = await spawnEventsink({ ...k, store, args: ["--eventstore-headers", `X-Api-Key=${apiKey}`] });
  try {
    await sink.waitForLog((l) => l.msg === "Delivered");
    await stop(sink);
  } finally {
    await sink.close();
  }
  assert.ok(store.requests().length >= 4, `${store.requests().length} requests`);
  const warnings = sink.lines.filter((l) => l.level === "warn" || l.level === "error");
  assert.ok(warnings.some((l) => /503/.test(JSON.stringify(l))), "the retries were logged");
  assertNoForms(warnings.map((l) => JSON.stringify(l)).join("\n"), [apiKey], "WARN/ERROR lines");
  assertNoForms(sink.output(), [apiKey], "eventsink's output");
});

Deno.test("echo (4): a token endpoint quoting the token request: exit 2, no form of the client secret", async (t) => {
  const k = await freshTopic();
  await using store = startEchoStore({ status: 202 });
  for (const method of ["client_secret_post", "client_secret_basic"]) {
    await t.step(method, async () => {
      const clientId = `es-${randomText(8)}`;
      // Characters that url- and form-encode: ~ / + and a space.
      const secret = `CS~${randomText(16)}/+ x${randomText(8)}`;
      registerBasic(clientId, secret);
      const file = await Deno.makeTempFile({ prefix: "eventsink-echo-secret-" });
      await Deno.writeTextFile(file, `${secret}\n`);
      await using tokenEndpoint = startEchoTokenEndpoint();
      try {
        const { code, output } = await runToEnd([
          ...baseArgs(k, store.url),
          ...oauthArgs(tokenEndpoint.tokenUrl, clientId),
          ...["--oauth-client-auth", method, "--oauth-client-secret-file", file],
        ], {});
        assert.equal(tokenEndpoint.requests().length, 1, "one token request");
        const sent = tokenEndpoint.requests()[0]!;
        assert.ok(
          method === "client_secret_basic"
            ? sent.headers.authorization?.startsWith("Basic ")
            : sent.body.includes("client_secret="),
          "the secret was sent as asked",
        );
        assertNoForms(output, [secret, { id: clientId, secret }], "eventsink's output");
        assert.equal(code, 2, output);
      } finally {
        await Deno.remove(file);
      }
    });
  }
  assert.equal(store.requests().length, 0, "nothing delivered");
});

Deno.test("echo (5): a secret cut by a length limit is masked before the cut", async (t) => {
  const k = await freshTopic();
  await t.step("error_description: filler, then the client secret", async () => {
    // Around the cut of today's 300 characters, so that 10 and 16 characters of the secret survive it.
    await Promise.all([290, 284].map(async (pad) => {
      const clientId = `es-${randomText(8)}`;
      const secret = `${randomText(32)}`;
      registerBasic(clientId, secret);
      await using tokenEndpoint = startTokenEndpoint(401, {
        error: "invalid_client",
        error_description: `${filler(pad)}${secret}`,
      });
      await using store = startEchoStore({ status: 202 });
      const { code, output } = await runToEnd(
        [...baseArgs(k, store.url), ...oauthArgs(tokenEndpoint.tokenUrl, clientId)],
        { EVENTSINK_OAUTH_CLIENT_SECRET: secret },
      );
      assert.ok(tokenEndpoint.requests().length >= 1);
      assert.ok(!output.includes(secret.slice(0, 8)), `pad ${pad}: a prefix of the secret was printed`);
      assertNoForms(output, [secret], `pad ${pad}: eventsink's output`);
      assert.equal(code, 2, output);
    }));
  });
  await t.step("diagnostics: filler, then the static token", async () => {
    const token = randomText(32);
    registerSecrets(token);
    // Around the cut of today's 500 characters: 16 and 9 characters of the token survive it.
    const pads = [483, 490];
    await using store = startEchoStore({
      status: 422,
      diagnostics: (r) => `${filler(pads[(r.n - 1) % pads.length]!)}${token}`,
    });
    await writeMessages(k, 2);
    const sink = await spawnEventsink({ ...k, store, env: { EVENTSINK_EVENTSTORE_TOKEN: token } });
    try {
      await waitUntil(
        "both records skipped",
        () => sink.lines.filter((l) => l.msg.startsWith("Skipped a rejected message")).length === 2,
      );
      await stop(sink);
    } finally {
      await sink.close();
    }
    assert.ok(!sink.output().includes(token.slice(0, 8)), "a prefix of the token was printed");
    assertNoForms(sink.output(), [token], "eventsink's output");
  });
});

/** An eventsink text line: an ISO time, then a level (no time under the journal, which is not the case here). */
const OWN_TEXT_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARN|ERROR)\b/;
const FORGED = "2026-01-01T00:00:00.000Z ERROR forged";

Deno.test("echo (8): text logs carry no control character, forged line, journal priority or huge line from a token endpoint", async () => {
  const k = await freshTopic();
  const injected = `\n${FORGED} by the token endpoint\r\u001b[31mred\u001b[0m\n<3>forged journal entry`;
  const peers: HostilePeer[] = [
    startTokenEndpoint(401, { error: "invalid_client", error_description: injected }),
    startTokenEndpoint(400, { error: `invalid_request${injected}`, error_description: `<3>${injected}` }),
    startTokenEndpoint(401, { error: `<3>${FORGED}\r\n\u001b[2J`, error_description: "\r" }),
    startTokenEndpoint(200, {
      access_token: randomText(40),
      token_type: `Bearer${"\u001b[31m".repeat(10)}${"y".repeat(100_000)}`,
    }),
  ];
  await using store = startEchoStore({ status: 202 });
  const secret = randomText(24);
  registerSecrets(secret);
  try {
    const runs = await Promise.all(peers.map((peer) =>
      runToEnd(
        [
          ...baseArgs(k, store.url),
          ...oauthArgs(peer.tokenUrl, `es-${randomText(8)}`),
          "--log-format",
          "text",
        ],
        { EVENTSINK_OAUTH_CLIENT_SECRET: secret },
      )
    ));
    const problems = runs.flatMap(({ code, output }, index) => {
      const what = `token endpoint ${index + 1}`;
      assert.ok(peers[index]!.requests().length >= 1, `${what} was asked`);
      return textLogProblems(output).concat(code === 2 ? [] : [`exit code ${code}`])
        .map((problem) => `${what}: ${problem}`);
    });
    assert.deepEqual(problems, [], problems.join("\n"));
  } finally {
    await Promise.all(peers.map((peer) => peer.close()));
  }
});

/** What is wrong with `output` as eventsink's text log: each kind of problem once, without quoting it. */
function textLogProblems(output: string): string[] {
  const lines = output.split("\n").filter((line) => line !== "");
  const problems: string[] = [];
  if (output.includes("\u001b")) problems.push("an ESC byte");
  if (output.includes("\r")) problems.push("a carriage return");
  const long = lines.find((line) => line.length > 4096);
  if (long !== undefined) problems.push(`a line of ${long.length} characters`);
  if (lines.some((line) => line.startsWith(FORGED.slice(0, 24)))) problems.push("the forged line");
  if (lines.some((line) => line.startsWith("<3>"))) problems.push('a line starting "<3>"');
  const foreign = lines.filter((line) => !OWN_TEXT_LINE.test(line)).length;
  if (foreign > 0) problems.push(`${foreign} line(s) not eventsink's own`);
  return problems;
}

/**
 * A small message Bundle about one patient: short enough that a store quoting it whole puts every patient
 * value inside the 500 characters of diagnostics eventsink keeps today.
 */
function patientMessage(patient: { name: string; nationalId: string; address: string }): {
  messageId: string;
  bytes: Uint8Array;
} {
  const messageId = crypto.randomUUID();
  const bundle = {
    resourceType: "Bundle",
    type: "message",
    entry: [
      {
        fullUrl: `urn:uuid:${messageId}`,
        resource: { resourceType: "MessageHeader", id: messageId, source: { endpoint: "urn:t" } },
      },
      {
        resource: {
          resourceType: "Patient",
          name: [{ text: patient.name }],
          identifier: [{ value: patient.nationalId }],
          address: [{ line: [patient.address] }],
        },
      },
    ],
  };
  const text = JSON.stringify(bundle);
  assert.ok(text.indexOf(patient.address) + patient.address.length < 450, "every patient value early");
  return { messageId, bytes: new TextEncoder().encode(text) };
}

Deno.test("echo (10): diagnostics quoting a record's patient data are not logged; the record is dead-lettered", async () => {
  const k = await freshTopic();
  const deadLetterTopic = uniqueName("dead");
  await createTopic(k.bootstrap, deadLetterTopic, 1);
  const patient = {
    name: "Kari Hemmelig-Nordmann",
    nationalId: "13097248022",
    address: "Hemmeligveien 13B, 0484 Oslo",
  };
  registerSecrets(patient.name, patient.nationalId, patient.address);
  const records = [patientMessage(patient), patientMessage(patient)];
  // The first answer quotes the body as HAPI quotes a value, the second quotes it bare.
  await using store = startHostilePeer((r) =>
    r.method === "POST"
      ? outcomeResponse(422, r.n % 2 === 1 ? `Invalid attribute value "${r.body}"` : r.body)
      : new Response(null, { status: 404 })
  );
  await produce(k.bootstrap, k.topic, records.map((m) => ({ key: m.messageId, value: m.bytes })));
  const sink = await spawnEventsink({ ...k, store, args: ["--dead-letter-topic", deadLetterTopic] });
  try {
    await waitUntil("both records dead-lettered", () => deadLettered(sink).length === 2);
    await stop(sink);
  } finally {
    await sink.close();
  }
  assert.equal(store.requests().length, 2, "each record posted once");
  for (const line of deadLettered(sink)) assert.equal(line.status, 422, JSON.stringify(line.msg));
  assert.equal((await readTopic(k.bootstrap, deadLetterTopic)).length, 2, "both in the dead-letter topic");
  // Each leak named by the value's kind and the line's message and offset (the first record's answer
  // quoted the body, the second's did not), never by the value.
  const leaks = sink.output().split("\n").flatMap((text) => {
    const line = parsed(text);
    return Object.entries(patient).filter(([, value]) => text.includes(value)).map(([what]) =>
      `the patient's ${what} in "${line?.msg ?? "a line that is not JSON"}" (offset ${line?.offset})`
    );
  });
  assert.deepEqual(leaks, [], leaks.join("\n"));
});

function parsed(text: string): { msg?: unknown; offset?: unknown } | undefined {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function deadLettered(sink: EventsinkProcess) {
  return sink.lines.filter((l) => l.msg === "Wrote a rejected message to the dead-letter topic");
}
