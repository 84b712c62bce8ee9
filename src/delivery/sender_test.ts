/**
 * The HTTP/1.1 sender (undici's dispatcher) against a real HTTP server: what it sends, how answers are
 * read and classified, a huge answer, a timeout, and an abort while a request waits for a connection.
 */
import assert from "node:assert/strict";
import { createAttemptSignals } from "./attempt_signals.ts";
import { createEventStoreClient, createSender, post } from "./sender.ts";
import type { PostRequest } from "./send.ts";

interface Served {
  url: string;
  /** Requests as the server saw them. */
  seen: Array<{ path: string; contentType: string | null; body: Uint8Array }>;
  close(): Promise<void>;
}

function serve(answer: (request: Request) => Response | Promise<Response>): Served {
  const seen: Served["seen"] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const body = new Uint8Array(await request.arrayBuffer());
    seen.push({
      path: new URL(request.url).pathname,
      contentType: request.headers.get("content-type"),
      body,
    });
    return await answer(request);
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

function sender(maxInFlight: number) {
  const client = createEventStoreClient({}, { maxInFlight, http2: false });
  return { send: createSender({}, { maxInFlight, http2: false }, client), client };
}

function postTo(url: string, body = '{"resourceType":"Bundle"}'): PostRequest {
  return {
    url: `${url}/fhir/4.0/$process-message`,
    headers: { "content-type": "application/fhir+json; fhirVersion=4.0" },
    body: new TextEncoder().encode(body),
  };
}

const outcomeOf = (text: string) =>
  JSON.stringify({
    resourceType: "OperationOutcome",
    issue: [{ severity: "error", code: "invalid", diagnostics: text }],
  });

// undici keeps its connections (and their timers) alive in the background after a test's last request.
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

test("sender: the body byte for byte with its Content-Type; statuses, Retry-After and diagnostics read", async () => {
  const answers = [
    new Response(null, { status: 202 }),
    new Response(outcomeOf("Bundle.type must be message"), { status: 422 }),
    new Response("busy", { status: 503, headers: { "retry-after": "2" } }),
  ];
  const server = serve(() => answers.shift()!);
  const { send, client } = sender(4);
  try {
    const options = { signals: createAttemptSignals(5_000), send };
    const body = '{"resourceType":"Bundle","type":"message","id":"æøå"}';
    assert.deepEqual(await post(postTo(server.url, body), new AbortController().signal, options), {
      kind: "delivered",
      status: 202,
    });
    assert.deepEqual(await post(postTo(server.url), new AbortController().signal, options), {
      kind: "rejected",
      status: 422,
      reason: "EventStore answered 422: Bundle.type must be message",
      diagnostics: "Bundle.type must be message",
    });
    assert.deepEqual(await post(postTo(server.url), new AbortController().signal, options), {
      kind: "retry",
      status: 503,
      reason: "EventStore answered 503",
      retryAfterMs: 2_000,
    });
    assert.equal(server.seen[0]!.path, "/fhir/4.0/$process-message");
    assert.equal(server.seen[0]!.contentType, "application/fhir+json; fhirVersion=4.0");
    assert.deepEqual(server.seen[0]!.body, new TextEncoder().encode(body));
  } finally {
    client.close();
    await server.close();
  }
});

test("sender: an answer of 4 MB is classified from its start, and the next POST goes through", async () => {
  let calls = 0;
  const server = serve(() =>
    ++calls === 1
      ? new Response("x".repeat(4 * 1024 * 1024), { status: 400 })
      : new Response(null, { status: 202 })
  );
  const { send, client } = sender(1);
  try {
    const options = { signals: createAttemptSignals(5_000), send };
    const first = await post(postTo(server.url), new AbortController().signal, options);
    assert.deepEqual(first, { kind: "rejected", status: 400, reason: "EventStore answered 400" });
    const second = await post(postTo(server.url), new AbortController().signal, options);
    assert.deepEqual(second, { kind: "delivered", status: 202 });
  } finally {
    client.close();
    await server.close();
  }
});

test("sender: no answer within the request timeout is a transient failure; a queued request aborts at once", async () => {
  const release = Promise.withResolvers<void>();
  const server = serve(async () => {
    await release.promise;
    return new Response(null, { status: 202 });
  });
  const { send, client } = sender(1);
  try {
    const began = Date.now();
    const timedOut = await post(postTo(server.url), new AbortController().signal, {
      signals: createAttemptSignals(300),
      send,
    });
    assert.equal(timedOut.kind, "retry");
    assert.match((timedOut as { reason: string }).reason, /300 ms/);
    assert.ok(Date.now() - began < 3_000, `took ${Date.now() - began} ms`);

    // One connection: the second request waits behind the first, which the server holds.
    const options = { signals: createAttemptSignals(30_000), send };
    const held = post(postTo(server.url), new AbortController().signal, options);
    const stopping = new AbortController();
    const queued = post(postTo(server.url), stopping.signal, options);
    setTimeout(() => stopping.abort(new Error("eventsink is stopping")), 100);
    await assert.rejects(queued, /eventsink is stopping/);
    release.resolve();
    assert.deepEqual(await held, { kind: "delivered", status: 202 });
  } finally {
    release.resolve();
    client.close();
    await server.close();
  }
});
