import assert from "node:assert/strict";
import { type EventStore, startEventStore } from "./support/eventstore.ts";
import { waitUntil } from "./support/pipeline.ts";
import {
  type FhirBundle,
  invalidVariants,
  loadFixtures,
  messageIdOf,
  withNewIds,
} from "./support/fhir_variants.ts";

const PROCESS_MESSAGE = "/fhir/4.0/$process-message";
const FHIR_JSON = "application/fhir+json";
const TOKEN = "s3cret-token";
const FIXTURES = await loadFixtures();
const [BESTILLING, DIALOGMELDING] = FIXTURES.map((fixture) => fixture.bundle) as [FhirBundle, FhirBundle];

interface SendOptions {
  method?: string;
  path?: string;
  /** null sends no Content-Type at all. */
  contentType?: string | null;
  token?: string;
  headers?: Record<string, string>;
  client?: Deno.HttpClient;
}

interface Reply {
  status: number;
  headers: Headers;
  json: unknown;
  text: string;
}

interface OutcomeIssue {
  severity: string;
  code: string;
  diagnostics?: string;
}

interface StoredSummary {
  messageId: string;
  bundleId: string;
  contentType: string;
  size: number;
  receivedAt: string;
}

/** Requests the store over real HTTP and reads the whole answer, so no response body leaks. */
async function send(
  store: EventStore,
  body: FhirBundle | string | Uint8Array<ArrayBuffer> | null,
  options: SendOptions = {},
): Promise<Reply> {
  const headers = new Headers(options.headers);
  const contentType = options.contentType === undefined ? FHIR_JSON : options.contentType;
  if (contentType !== null) headers.set("content-type", contentType);
  if (options.token !== undefined) headers.set("authorization", `Bearer ${options.token}`);
  const response = await fetch(store.url + (options.path ?? PROCESS_MESSAGE), {
    method: options.method ?? "POST",
    // Bytes, so that fetch adds no Content-Type of its own.
    body: body === null ? null : bytesOf(body),
    headers,
    client: options.client,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text ? JSON.parse(text) : null, text };
}

function bytesOf(body: FhirBundle | string | Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  if (typeof body === "string") return new TextEncoder().encode(body);
  return "resourceType" in body ? new TextEncoder().encode(JSON.stringify(body)) : body;
}

function admin(store: EventStore, path: string, method = "GET", body?: unknown): Promise<Reply> {
  const json = body === undefined ? null : JSON.stringify(body);
  return send(store, json, {
    method,
    path: `/_admin/${path}`,
    contentType: json === null ? null : "application/json",
  });
}

function fresh(bundle: FhirBundle = BESTILLING): FhirBundle {
  return withNewIds(bundle);
}

/** Checks the answer is an OperationOutcome with one error issue of code exception, as injected ones are. */
function assertException(reply: Reply, status: number): OutcomeIssue {
  assert.equal(reply.status, status, reply.text);
  assert.match(reply.headers.get("content-type") ?? "", /^application\/fhir\+json/);
  const outcome = reply.json as { resourceType: string; issue: OutcomeIssue[] };
  assert.equal(outcome.resourceType, "OperationOutcome");
  const [issue] = outcome.issue;
  assert.ok(issue);
  assert.equal(issue.severity, "error");
  assert.equal(issue.code, "exception");
  assert.ok(issue.diagnostics, "the issue explains itself");
  return issue;
}

async function elapsedMs(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

// What the stand-in answers is the real store's contract (tests/contract_test.ts runs against both); these
// tests cover what only the stand-in has: the bytes it keeps, its options, its records, faults and admin API.

Deno.test("keeps the bytes it received beside the re-encoded message", async (t) => {
  await t.step("a fixture's file bytes are stored unchanged, with the Content-Type", async () => {
    await using store = await startEventStore();
    const [fixture] = FIXTURES;
    assert.ok(fixture);
    const reply = await send(store, fixture.bytes, { contentType: `${FHIR_JSON}; fhirVersion=4.0` });
    assert.equal(reply.status, 202, reply.text);
    const [stored] = store.stored();
    assert.ok(stored);
    assert.deepEqual(stored.body, fixture.bytes);
    assert.deepEqual(stored.resource, fixture.bundle);
    assert.equal(stored.messageId, messageIdOf(fixture.bundle));
    assert.equal(stored.bundleId, fixture.bundle.id);
    assert.equal(stored.rowId, 1);
    assert.equal(stored.contentType, `${FHIR_JSON}; fhirVersion=4.0`);
    assert.equal(stored.headers["content-type"], `${FHIR_JSON}; fhirVersion=4.0`);
    assert.ok(stored.receivedAt instanceof Date);
  });

  await t.step("odd whitespace, CRLF and non-ASCII text are kept byte for byte", async () => {
    await using store = await startEventStore();
    const odd = `\r\n \t${JSON.stringify(fresh(), null, 3).replaceAll("\n", "\r\n\t ")}\n\n`;
    const bytes = new TextEncoder().encode(odd);
    assert.equal((await send(store, bytes)).status, 202);
    assert.deepEqual(store.stored()[0]?.body, bytes);
  });

  await t.step("a repeat with other whitespace is 202 and the first bytes stay", async () => {
    await using store = await startEventStore();
    const message = fresh();
    const bytes = bytesOf(message);
    assert.equal((await send(store, bytes)).status, 202);
    assert.equal((await send(store, JSON.stringify(message, null, 2))).status, 202);
    assert.equal(store.stored().length, 1);
    assert.deepEqual(store.stored()[0]?.body, bytes);
  });

  await t.step("ids are kept in their lower-case form, as the real store's UUIDs", async () => {
    await using store = await startEventStore();
    const message = fresh();
    const upper = { ...message, id: message.id?.toUpperCase() };
    assert.equal((await send(store, upper)).status, 202);
    assert.equal(store.stored()[0]?.bundleId, message.id);
  });

  await t.step("a failed insert uses up a row id, as a PostgreSQL sequence does", async () => {
    await using store = await startEventStore();
    const first = fresh();
    assert.equal((await send(store, first)).status, 202);
    assert.equal((await send(store, { ...fresh(), id: first.id })).status, 500);
    assert.equal((await send(store, fresh())).status, 202);
    assert.deepEqual(store.stored().map((message) => message.rowId), [1, 3]);
  });

  await t.step("withNewIds gives distinct valid messages with consistent references", async () => {
    await using store = await startEventStore();
    const copies = Array.from(
      { length: 300 },
      (_, index) => fresh(FIXTURES[index % FIXTURES.length]?.bundle),
    );
    assert.equal(new Set(copies.map(messageIdOf)).size, copies.length);
    const statuses = await Promise.all(copies.map(async (copy) => (await send(store, copy)).status));
    assert.deepEqual(new Set(statuses), new Set([202]));
    assert.equal(store.stored().length, copies.length);
    const copy = fresh(BESTILLING);
    const focus = copy.entry?.[0]?.resource?.focus as { reference: string }[];
    assert.deepEqual(
      focus.map((reference) => reference.reference),
      copy.entry?.slice(1).map((entry) => entry.fullUrl),
    );
  });

  await t.step("every invalid variant is refused and nothing of them is stored", async () => {
    await using store = await startEventStore();
    for (const fixture of FIXTURES) {
      for (const variant of invalidVariants(fixture.bundle)) {
        const reply = await send(store, variant.bundle);
        assert.equal(reply.status, variant.status, `${fixture.name} ${variant.name}: ${reply.text}`);
      }
    }
    assert.equal(store.stored().length, 0);
  });
});

Deno.test("two copies of one new message in flight at once: the later insert fails, as the real store's", async (t) => {
  await using store = await startEventStore();
  store.faults.latency(300);
  const sendTogether = (...bodies: FhirBundle[]) => Promise.all(bodies.map((body) => send(store, body)));

  await t.step(
    "a copy that came while the first was in flight is 500 on the Bundle.id constraint",
    async () => {
      const message = fresh();
      const [first, second] = await sendTogether(message, message);
      assert.equal(first?.status, 202, first?.text);
      const said = assertException(second!, 500).diagnostics ?? "";
      assert.match(said, /duplicate key value violates unique constraint "event_bundle_id_key"/);
      assert.ok(said.includes(`(bundle_id)=(${message.id})`), said);
      assert.equal((await send(store, message)).status, 202, "a copy after them finds it stored");
      assert.equal(store.stored().length, 1);
    },
  );

  await t.step(
    "the same message id under another Bundle.id is 500 on the message_id constraint",
    async () => {
      const message = fresh();
      const [first, second] = await sendTogether(message, { ...message, id: crypto.randomUUID() });
      assert.equal(first?.status, 202, first?.text);
      const said = assertException(second!, 500).diagnostics ?? "";
      assert.match(said, /unique constraint "event_message_id_key"/);
      assert.ok(said.includes(`(message_id)=(${messageIdOf(message)})`), said);
      assert.equal(store.stored().length, 2);
    },
  );
});

Deno.test("judges the future by its own clock", async () => {
  await using early = await startEventStore({ now: () => new Date("2016-01-01T00:00:00Z") });
  const issue = assertException(await send(early, fresh(BESTILLING)), 422);
  assert.equal(issue.diagnostics, "Bundle.timestamp cannot be in the future.");
  assert.equal((await send(early, fresh(DIALOGMELDING))).status, 202);
});

Deno.test("checks a static token or asks an authorize hook", async (t) => {
  await t.step("a static token", async () => {
    await using store = await startEventStore({ token: TOKEN });
    assert.equal((await send(store, fresh())).status, 401);
    assert.equal((await send(store, fresh(), { token: "wrong" })).status, 401);
    assert.equal((await send(store, fresh(), { token: TOKEN })).status, 202);
    assert.equal(store.stored().length, 1);
  });

  await t.step("an authorize hook decides instead, and may be async", async () => {
    const seen: (string | null)[] = [];
    await using hooked = await startEventStore({
      authorize: async (authorization) => {
        seen.push(authorization);
        await Promise.resolve();
        return authorization === "Bearer from-hook";
      },
    });
    assert.equal((await send(hooked, fresh(), { token: "from-hook" })).status, 202);
    assert.equal((await send(hooked, fresh(), { token: TOKEN })).status, 401);
    assert.equal((await send(hooked, fresh())).status, 401);
    assert.deepEqual(seen, ["Bearer from-hook", `Bearer ${TOKEN}`, null]);
  });

  await t.step("token and authorize together are refused", async () => {
    await assert.rejects(startEventStore({ token: TOKEN, authorize: () => true }), TypeError);
  });

  await t.step("without either nothing is checked", async () => {
    await using open = await startEventStore();
    assert.equal((await send(open, fresh())).status, 202);
  });
});

Deno.test("records every request and counts answers", async (t) => {
  await using store = await startEventStore({ token: TOKEN });

  await t.step("method, path, lower-case headers, size, status, message id and time", async () => {
    const message = fresh();
    const headers = { "X-Request-ID": "req-1", "User-Agent": "eventsink-test/1" };
    const bytes = bytesOf(message);
    await send(store, bytes, { token: TOKEN, headers });
    const [request] = store.requests();
    assert.ok(request);
    assert.equal(request.method, "POST");
    assert.equal(request.path, PROCESS_MESSAGE);
    assert.equal(request.headers["x-request-id"], "req-1");
    assert.equal(request.headers["user-agent"], "eventsink-test/1");
    assert.equal(request.headers["authorization"], `Bearer ${TOKEN}`);
    assert.equal(request.headers["content-type"], FHIR_JSON);
    assert.equal(request.bodyBytes, bytes.byteLength);
    assert.equal(request.status, 202);
    assert.equal(request.dropped, false);
    assert.equal(request.injected, false);
    assert.equal(request.messageId, messageIdOf(message));
    assert.ok(request.receivedAt instanceof Date);
  });

  await t.step("refused requests are recorded too, with their message id", async () => {
    const message = fresh();
    await send(store, message, { token: "wrong" });
    await send(store, null, { method: "GET", path: "/nowhere?x=1", contentType: null });
    const [, refused, unknown] = store.requests();
    assert.equal(refused?.status, 401);
    assert.equal(refused?.messageId, messageIdOf(message));
    assert.equal(unknown?.status, 404);
    assert.equal(unknown?.path, "/nowhere?x=1");
    assert.equal(unknown?.messageId, null);
  });

  await t.step("stats count requests by status", () => {
    assert.deepEqual(store.stats(), {
      requests: 3,
      stored: 1,
      dropped: 0,
      injected: 0,
      held: 0,
      byStatus: { "202": 1, "401": 1, "404": 1 },
    });
  });

  await t.step("waitForStored and waitForRequests resolve once enough arrived", async () => {
    const waiting = Promise.all([store.waitForStored(3), store.waitForRequests(5)]);
    await send(store, fresh(), { token: TOKEN });
    await send(store, fresh(), { token: TOKEN });
    await waiting;
    await store.waitForStored(1);
  });

  await t.step("they reject saying how many arrived", async () => {
    await assert.rejects(store.waitForStored(5, { timeoutMs: 50 }), /5 stored messages: 3 arrived/);
    await assert.rejects(store.waitForRequests(9, { timeoutMs: 50 }), /9 requests: 5 arrived/);
  });

  await t.step("reset forgets everything", () => {
    store.reset();
    assert.equal(store.stored().length, 0);
    assert.equal(store.requests().length, 0);
  });
});

Deno.test("injects faults", async (t) => {
  await using store = await startEventStore();

  await t.step("latency delays every POST by at least the set time", async () => {
    store.faults.latency(200);
    const slow = await elapsedMs(() => send(store, fresh()));
    store.faults.latency(0);
    const quick = await elapsedMs(() => send(store, fresh()));
    assert.ok(slow >= 200, `took ${slow} ms`);
    assert.ok(quick < 200, `took ${quick} ms`);
  });

  await t.step("a script answers its statuses in order without storing, then normally", async () => {
    store.reset();
    store.faults.script([503, 500, 429, 202]);
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await send(store, fresh())).status);
    assert.deepEqual(statuses, [503, 500, 429, 202, 202, 202]);
    assert.equal(store.stored().length, 2);
    assert.deepEqual(store.requests().map((request) => request.injected), [
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
    assert.equal(store.stats().injected, 4);
  });

  await t.step(
    "injected failures are OperationOutcomes of code exception, saying they were injected",
    async () => {
      store.faults.script([503, 429, 400]);
      for (const status of [503, 429, 400]) {
        assert.match(assertException(await send(store, fresh()), status).diagnostics ?? "", /fault injected/);
      }
    },
  );

  await t.step('"pass" evaluates normally and "drop" drops, inside a script', async () => {
    store.reset();
    store.faults.script([503, "pass", "drop", 500]);
    assert.equal((await send(store, fresh())).status, 503);
    assert.equal((await send(store, fresh())).status, 202);
    await withFreshClient((client) => assert.rejects(send(store, fresh(), { client }), TypeError));
    assert.equal((await send(store, fresh())).status, 500);
    assert.equal((await send(store, fresh())).status, 202);
    assert.equal(store.stored().length, 2);
  });

  await t.step("an outage answers every POST until reset", async () => {
    store.reset();
    store.faults.outage({ status: 503, retryAfter: 7 });
    for (let i = 0; i < 3; i++) {
      const reply = await send(store, fresh());
      assertException(reply, 503);
      assert.equal(reply.headers.get("retry-after"), "7");
    }
    assert.equal(store.stored().length, 0);
    store.faults.reset();
    assert.equal((await send(store, fresh())).status, 202);
  });

  await t.step("an outage defaults to 503 and ends with outage(null)", async () => {
    store.faults.outage({});
    assert.equal((await send(store, fresh())).status, 503);
    store.faults.outage(null);
    assert.equal((await send(store, fresh())).status, 202);
  });

  await t.step(
    "retryAfter adds Retry-After to injected failures, in seconds or as an HTTP-date",
    async () => {
      store.faults.retryAfter(3);
      store.faults.script([503]);
      assert.equal((await send(store, fresh())).headers.get("retry-after"), "3");
      const date = new Date("2030-01-02T03:04:05Z");
      store.faults.retryAfter(date);
      store.faults.outage({ status: 502 });
      assert.equal((await send(store, fresh())).headers.get("retry-after"), "Wed, 02 Jan 2030 03:04:05 GMT");
      store.faults.outage({ status: 503, retryAfter: "Thu, 03 Jan 2030 00:00:00 GMT" });
      assert.equal((await send(store, fresh())).headers.get("retry-after"), "Thu, 03 Jan 2030 00:00:00 GMT");
      store.faults.reset();
      store.faults.script([503]);
      assert.equal((await send(store, fresh())).headers.get("retry-after"), null);
    },
  );

  await t.step(
    "dropConnections closes the connection: fetch rejects with a TypeError, nothing is stored",
    async () => {
      store.reset();
      store.faults.dropConnections(1);
      await withFreshClient((client) => assert.rejects(send(store, fresh(), { client }), TypeError));
      assert.equal(store.stored().length, 0);
      const [dropped] = store.requests();
      assert.equal(dropped?.dropped, true);
      assert.equal(dropped?.status, null);
      assert.equal(dropped?.injected, true);
      assert.equal(store.stats().dropped, 1);
      assert.equal((await send(store, fresh())).status, 202);
    },
  );

  await t.step("Deno's fetch replays a request dropped on a reused connection once, unseen", async () => {
    store.reset();
    const message = fresh();
    await withFreshClient(async (client) => {
      assert.equal((await send(store, fresh(), { client })).status, 202);
      store.faults.dropConnections(1);
      assert.equal((await send(store, message, { client })).status, 202);
    });
    const attempts = store.requests().filter((request) => request.messageId === messageIdOf(message));
    assert.deepEqual(attempts.map((request) => request.status), [null, 202]);
  });

  await t.step('dropConnections("all") drops every POST until reset', async () => {
    store.reset();
    store.faults.dropConnections("all");
    await assert.rejects(send(store, fresh()), TypeError);
    await assert.rejects(send(store, fresh()), TypeError);
    assert.equal(store.stored().length, 0);
    assert.ok(store.requests().every((request) => request.dropped));
    store.faults.reset();
    assert.equal((await send(store, fresh())).status, 202);
  });

  await t.step("slowBody sends the headers at once and trickles the body", async () => {
    store.faults.slowBody(400);
    store.faults.script([503]);
    const start = performance.now();
    const response = await fetch(`${store.url}${PROCESS_MESSAGE}`, {
      method: "POST",
      body: bytesOf(fresh()),
      headers: { "content-type": FHIR_JSON },
    });
    const headersAfter = performance.now() - start;
    const outcome = JSON.parse(await response.text());
    const bodyAfter = performance.now() - start;
    store.faults.reset();
    assert.equal(response.status, 503);
    assert.equal(outcome.resourceType, "OperationOutcome");
    assert.ok(headersAfter < 400, `headers after ${headersAfter} ms`);
    assert.ok(bodyAfter >= 400, `body after ${bodyAfter} ms`);
  });

  await t.step("failMessage fails one message id every time and leaves the others alone", async () => {
    store.reset();
    const stuck = fresh();
    store.faults.failMessage(messageIdOf(stuck), 500);
    for (let i = 0; i < 3; i++) assertException(await send(store, stuck), 500);
    assert.equal((await send(store, fresh())).status, 202);
    store.faults.failMessage(messageIdOf(stuck), null);
    assert.equal((await send(store, stuck)).status, 202);
    assert.equal(store.stored().at(-1)?.messageId, messageIdOf(stuck));
  });

  await t.step("bad fault values throw and change nothing", () => {
    store.faults.reset();
    assert.throws(() => store.faults.latency(-1), RangeError);
    assert.throws(() => store.faults.script([503, 99]), RangeError);
    assert.throws(() => store.faults.script([204]), RangeError);
    assert.throws(() => store.faults.dropConnections(1.5), RangeError);
    assert.throws(() => store.faults.retryAfter(""), RangeError);
    assert.throws(() => store.faults.apply({ latencyMs: 10, slowBodyMs: -5 }), RangeError);
    assert.deepEqual(store.faults.state(), {
      latencyMs: 0,
      script: [],
      outage: null,
      retryAfter: null,
      dropConnections: 0,
      slowBodyMs: 0,
      stalled: false,
      writeFailure: null,
      failMessages: {},
    });
  });

  await t.step(
    "an outage answers the search too; the other faults touch POSTs only; admin never",
    async () => {
      const search = () =>
        send(store, null, { method: "GET", path: "/fhir/4.0/Bundle?_count=1", contentType: null });
      store.faults.outage({ status: 503, retryAfter: 4 });
      const down = await search();
      assertException(down, 503);
      assert.equal(down.headers.get("retry-after"), "4");
      assert.equal((await admin(store, "stats")).status, 200);
      store.faults.reset();
      store.faults.script([500]);
      store.faults.failMessage("any", 500);
      assert.equal((await search()).status, 200);
      store.faults.reset();
    },
  );

  await t.step("a write failure fails every insert with its text; checks and the search go on", async () => {
    const stored = fresh();
    assert.equal((await send(store, stored)).status, 202);
    store.faults.writeFailure("ERROR: cannot execute INSERT in a read-only transaction");
    const said = assertException(await send(store, fresh()), 500).diagnostics;
    assert.equal(said, "ERROR: cannot execute INSERT in a read-only transaction");
    assert.equal((await send(store, stored)).status, 202, "a repeat finds it stored");
    assert.equal((await send(store, { ...fresh(), type: "collection" })).status, 422);
    const search = await send(store, null, { method: "GET", path: "/fhir/4.0/Bundle", contentType: null });
    assert.equal(search.status, 200);
    store.faults.writeFailure(null);
    assert.equal((await send(store, fresh())).status, 202);
    store.faults.reset();
  });

  await t.step("a stall holds every FHIR request unread until it ends, then the latency counts", async () => {
    store.faults.apply({ stalled: true, latencyMs: 100 });
    const started = performance.now();
    const post = send(store, fresh());
    const search = send(store, null, { method: "GET", path: "/fhir/4.0/Bundle", contentType: null });
    await waitUntil("both requests held", () => store.stats().held === 2);
    assert.equal((await admin(store, "stats")).status, 200, "the admin API is not held");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = store.stats().requests;
    store.faults.stall(false);
    assert.equal((await post).status, 202);
    assert.equal((await search).status, 200);
    assert.ok(performance.now() - started >= 400, "answered after the stall and the latency");
    assert.equal(store.stats().requests, before + 2);
    assert.equal(store.stats().held, 0);
    store.faults.reset();
  });
});

async function withFreshClient<T>(use: (client: Deno.HttpClient) => Promise<T>): Promise<T> {
  // A client of its own opens a new connection, which Deno's fetch does not retry when it is dropped.
  const client = Deno.createHttpClient({});
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

Deno.test("offers an admin API that needs no token", async (t) => {
  await using store = await startEventStore({ token: TOKEN });
  const messages = [fresh(), fresh(DIALOGMELDING)];
  for (const message of messages) await send(store, message, { token: TOKEN });

  await t.step("GET /_admin/stored lists the stored messages without their bodies", async () => {
    const reply = await admin(store, "stored");
    assert.equal(reply.status, 200);
    const stored = reply.json as StoredSummary[];
    assert.deepEqual(stored.map((message) => message.messageId), messages.map(messageIdOf));
    assert.deepEqual(stored.map((message) => message.bundleId), messages.map((message) => message.id));
    assert.equal(stored[0]?.contentType, FHIR_JSON);
    assert.equal(stored[0]?.size, bytesOf(messages[0] as FhirBundle).byteLength);
    assert.ok(Date.parse(stored[0]?.receivedAt ?? "") > 0);
  });

  await t.step("GET /_admin/requests and /_admin/stats show the FHIR requests only", async () => {
    const requests = (await admin(store, "requests")).json as { status: number; path: string }[];
    assert.deepEqual(requests.map((request) => request.status), [202, 202]);
    const stats = (await admin(store, "stats")).json as {
      requests: number;
      byStatus: Record<string, number>;
    };
    assert.equal(stats.requests, 2);
    assert.deepEqual(stats.byStatus, { "202": 2 });
  });

  await t.step("POST /_admin/faults sets faults and answers their state", async () => {
    const reply = await admin(store, "faults", "POST", {
      script: [503, "pass"],
      retryAfter: 5,
      failMessages: { "some-id": 500 },
    });
    assert.equal(reply.status, 200);
    const state = reply.json as {
      script: unknown[];
      retryAfter: string;
      failMessages: Record<string, number>;
    };
    assert.deepEqual(state.script, [503, "pass"]);
    assert.equal(state.retryAfter, "5");
    assert.deepEqual(state.failMessages, { "some-id": 500 });
    const failed = await send(store, fresh(), { token: TOKEN });
    assert.equal(failed.status, 503);
    assert.equal(failed.headers.get("retry-after"), "5");
    assert.deepEqual(((await admin(store, "faults")).json as { script: unknown[] }).script, ["pass"]);
  });

  await t.step("the admin API keeps working while every POST is dropped", async () => {
    assert.equal((await admin(store, "faults", "POST", { dropConnections: "all" })).status, 200);
    await assert.rejects(send(store, fresh(), { token: TOKEN }), TypeError);
    assert.equal((await admin(store, "stored")).status, 200);
  });

  await t.step("bad settings are 400 and change nothing", async () => {
    const before = (await admin(store, "faults")).json;
    assertException(await admin(store, "faults", "POST", { latencyMs: "slow" }), 400);
    assertException(await admin(store, "faults", "POST", { sometimes: true }), 400);
    assertException(await admin(store, "faults", "POST", [1]), 400);
    assertException(await send(store, "{", { path: "/_admin/faults", contentType: null }), 400);
    assert.deepEqual((await admin(store, "faults")).json, before);
  });

  await t.step("POST /_admin/faults with reset clears the faults first", async () => {
    const state = (await admin(store, "faults", "POST", { reset: true, latencyMs: 1 })).json;
    assert.deepEqual(state, {
      latencyMs: 1,
      script: [],
      outage: null,
      retryAfter: null,
      dropConnections: 0,
      slowBodyMs: 0,
      stalled: false,
      writeFailure: null,
      failMessages: {},
    });
  });

  await t.step("POST /_admin/reset forgets messages, requests and faults", async () => {
    const reply = await admin(store, "reset", "POST");
    assert.equal(reply.status, 204);
    assert.deepEqual((await admin(store, "stored")).json, []);
    assert.equal(store.requests().length, 0);
    assert.equal(store.faults.state().latencyMs, 0);
  });

  await t.step("unknown admin paths are 404 and wrong methods 405", async () => {
    const missing = await admin(store, "nothing");
    assert.equal(missing.status, 404);
    assert.match((missing.json as { error: string }).error, /no endpoint at \/_admin\/nothing/);
    const reply = await admin(store, "stored", "DELETE");
    assert.equal(reply.status, 405);
    assert.equal(reply.headers.get("allow"), "GET");
  });
});

Deno.test("listens where asked and closes cleanly", async (t) => {
  await t.step("the url is the base URL on 127.0.0.1", async () => {
    await using store = await startEventStore();
    assert.match(store.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  await t.step("close is idempotent and ends pending waits and faults", async () => {
    const store = await startEventStore();
    store.faults.slowBody(60_000);
    const response = await fetch(`${store.url}${PROCESS_MESSAGE}`, {
      method: "POST",
      body: bytesOf(fresh()),
      headers: { "content-type": FHIR_JSON },
    });
    const waiting = assert.rejects(
      store.waitForStored(2, { timeoutMs: 60_000 }),
      /closed while waiting for 2 stored messages: 1 arrived/,
    );
    await Promise.all([store.close(), store.close()]);
    await waiting;
    await assert.rejects(response.text());
  });

  await t.step("a port in use is refused", async () => {
    await using first = await startEventStore();
    const port = Number(new URL(first.url).port);
    await assert.rejects(startEventStore({ port }), Deno.errors.AddrInUse);
  });
});
