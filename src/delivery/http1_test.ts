import assert from "node:assert/strict";
import { http1Sender } from "./http1.ts";
import { bodyFraming, HttpFailure, parseAnswerHead, parseChunkSize } from "./http1_answer.ts";
import { classifyFetchError } from "./outcome.ts";

Deno.test("http1: an answer's head gives status, Retry-After, framing and whether the connection stays", () => {
  const head = parseAnswerHead("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 12");
  assert.deepEqual(head, {
    status: 503,
    retryAfter: "7",
    contentLength: 12,
    chunked: false,
    keepAlive: true,
  });
  assert.deepEqual(bodyFraming(head), { kind: "length", length: 12 });
  assert.equal(parseAnswerHead("HTTP/1.1 200 OK\r\nConnection: close").keepAlive, false);
  assert.equal(parseAnswerHead("HTTP/1.0 200 OK\r\nContent-Length: 0").keepAlive, false);
  assert.equal(parseAnswerHead("HTTP/1.0 200 OK\r\nConnection: keep-alive").keepAlive, true);
  assert.deepEqual(bodyFraming(parseAnswerHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked")), {
    kind: "chunked",
  });
  assert.deepEqual(bodyFraming(parseAnswerHead("HTTP/1.1 202 Accepted\r\ncontent-length: 0")), {
    kind: "none",
  });
  assert.deepEqual(bodyFraming(parseAnswerHead("HTTP/1.1 204 No Content")), { kind: "none" });
  assert.deepEqual(bodyFraming(parseAnswerHead("HTTP/1.1 200 OK")), { kind: "close" });
  assert.equal(parseChunkSize("1a;name=value"), 26);
});

Deno.test("http1: what cannot be framed safely is refused", () => {
  for (
    const text of [
      "HTTP/2 200",
      "SSH-2.0-OpenSSH_9.6",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6",
      "HTTP/1.1 200 OK\r\nContent-Length: -1",
      "HTTP/1.1 200 OK\r\nno colon here",
    ]
  ) {
    assert.throws(() => parseAnswerHead(text), HttpFailure, text);
  }
  assert.throws(() => parseChunkSize("zz"), HttpFailure);
});

/** A TCP server on 127.0.0.1 whose every accepted connection is handled by `serve`; counts connections. */
function rawServer(serve: (conn: Deno.Conn, index: number) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let accepted = 0;
  const open = new Set<Deno.Conn>();
  const handling: Promise<void>[] = [];
  const close = (conn: Deno.Conn) => {
    if (open.delete(conn)) conn.close();
  };
  (async () => {
    for await (const conn of listener) {
      open.add(conn);
      handling.push(serve(conn, accepted++).catch(() => {}).finally(() => close(conn)));
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${listener.addr.port}/fhir/4.0/$process-message`,
    accepted: () => accepted,
    async [Symbol.asyncDispose]() {
      listener.close();
      // The client keeps its connections: the server ends them.
      for (const conn of [...open]) close(conn);
      await Promise.allSettled(handling);
    },
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads one request (head and a Content-Length body) from `conn`; undefined when it closed first. */
async function readRequest(conn: Deno.Conn, pending: { bytes: Uint8Array }) {
  for (;;) {
    const text = decoder.decode(pending.bytes);
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      const headBytes = encoder.encode(text.slice(0, end + 4)).length;
      if (pending.bytes.length >= headBytes + length) {
        const body = pending.bytes.slice(headBytes, headBytes + length);
        pending.bytes = pending.bytes.slice(headBytes + length);
        return { head: text.slice(0, end), body };
      }
    }
    const chunk = new Uint8Array(65536);
    const n = await conn.read(chunk);
    if (n === null) return undefined;
    const joined = new Uint8Array(pending.bytes.length + n);
    joined.set(pending.bytes);
    joined.set(chunk.subarray(0, n), pending.bytes.length);
    pending.bytes = joined;
  }
}

async function write(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

const never = new AbortController().signal;
const request = (url: string, body = '{"resourceType":"Bundle"}') => ({
  url,
  headers: { "content-type": "application/fhir+json; fhirVersion=4.0", "x-request-id": "eventsink-t-0-1" },
  body: encoder.encode(body),
});

Deno.test("http1: bodies of every size go byte for byte, one after another on the same connection", async () => {
  const seen: Uint8Array[] = [];
  await using server = rawServer(async (conn) => {
    const pending = { bytes: new Uint8Array(0) };
    for (;;) {
      const got = await readRequest(conn, pending);
      if (got === undefined) return;
      seen.push(got.body);
      await write(conn, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
    }
  });
  const send = http1Sender({ maxAnswerBytes: 64 * 1024 });
  // Written from the connection's own buffer, from one made for it, and as head and body apart; a small
  // body after a large one must not carry the large one's bytes.
  const sizes = [20, 15_000, 40_000, 200_000, 7, 16_300];
  const bodies = sizes.map((size, i) => new Uint8Array(size).map((_, j) => (i * 31 + j * 7) % 251));
  for (const body of bodies) {
    assert.equal((await send({ ...request(server.url), body }, never)).status, 202);
  }
  assert.equal(server.accepted(), 1, "one connection, kept alive");
  assert.deepEqual(seen, bodies);
});

Deno.test("http1: requests go byte for byte over one kept connection; chunked and sized answers are read", async () => {
  const seen: Array<{ head: string; body: Uint8Array }> = [];
  await using server = rawServer(async (conn) => {
    const pending = { bytes: new Uint8Array(0) };
    for (let i = 0;; i++) {
      const got = await readRequest(conn, pending);
      if (got === undefined) return;
      seen.push(got);
      if (i === 0) {
        await write(conn, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
      } else if (i === 1) {
        await write(
          conn,
          "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        );
      } else await write(conn, "HTTP/1.1 503 Unavailable\r\nRetry-After: 2\r\nContent-Length: 4\r\n\r\nbusy");
    }
  });
  const send = http1Sender({ maxAnswerBytes: 64 * 1024 });
  const body = '{"resourceType":"Bundle","id":"æøå"}';
  assert.deepEqual(await send(request(server.url, body), never), { status: 202, retryAfter: null, body: "" });
  assert.deepEqual(await send(request(server.url), never), { status: 400, retryAfter: null, body: "abcde" });
  assert.deepEqual(await send(request(server.url), never), { status: 503, retryAfter: "2", body: "busy" });
  assert.equal(server.accepted(), 1, "one connection, kept alive");
  assert.deepEqual(seen[0]!.body, encoder.encode(body));
  assert.match(seen[0]!.head, /^POST \/fhir\/4\.0\/\$process-message HTTP\/1\.1\r\n/);
  assert.match(seen[0]!.head, /\r\nhost: 127\.0\.0\.1:\d+\r\n/);
  assert.match(seen[0]!.head, /\r\ncontent-type: application\/fhir\+json; fhirVersion=4\.0\r\n/);
  assert.match(seen[0]!.head, new RegExp(`\r\ncontent-length: ${encoder.encode(body).length}$`));
});

Deno.test("http1: a long answer is cut at the limit and its connection dropped; the next request opens a new one", async () => {
  await using server = rawServer(async (conn) => {
    const pending = { bytes: new Uint8Array(0) };
    while (await readRequest(conn, pending)) {
      await write(conn, `HTTP/1.1 500 Oops\r\nContent-Length: 100000\r\n\r\n${"x".repeat(100_000)}`);
    }
  });
  const send = http1Sender({ maxAnswerBytes: 1000 });
  const first = await send(request(server.url), never);
  assert.equal(first.status, 500);
  assert.equal(first.body, "x".repeat(1000));
  assert.equal((await send(request(server.url), never)).status, 500);
  assert.equal(server.accepted(), 2);
});

Deno.test("http1: a kept connection the server closed is replaced without a failure; a fresh one closed is a failure", async () => {
  await using server = rawServer(async (conn, index) => {
    const pending = { bytes: new Uint8Array(0) };
    if (index === 2) return; // closes without answering
    await readRequest(conn, pending);
    await write(conn, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
    // The server's keep-alive timeout: the connection goes while idle.
  });
  const send = http1Sender({ maxAnswerBytes: 64 * 1024 });
  assert.equal((await send(request(server.url), never)).status, 202);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(
    (await send(request(server.url), never)).status,
    202,
    "the closed kept connection was replaced",
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  const error = await send(request(server.url), never).then(() => undefined, (e) => e);
  // The kept connection (2nd) was closed by the server, and the fresh one (3rd) closes without answering.
  assert.ok(error instanceof HttpFailure, String(error));
  assert.match(
    classifyFetchError(error, 1000)?.reason ?? "",
    /^Cannot reach the EventStore: .*closed the connection/,
  );
  assert.equal(server.accepted(), 3);
});

Deno.test("http1: an abort ends the wait for an answer with the signal's reason; a refused port is a failure", async () => {
  await using server = rawServer(async (conn) => {
    await readRequest(conn, { bytes: new Uint8Array(0) });
    await new Promise((resolve) => setTimeout(resolve, 500));
  });
  const send = http1Sender({ maxAnswerBytes: 64 * 1024 });
  const controller = new AbortController();
  const reason = new DOMException("no answer within 100 ms", "TimeoutError");
  setTimeout(() => controller.abort(reason), 100);
  const startedAt = Date.now();
  await assert.rejects(send(request(server.url), controller.signal), (error) => error === reason);
  assert.ok(Date.now() - startedAt < 1000);

  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = listener.addr.port;
  listener.close();
  const refused = await send(request(`http://127.0.0.1:${closedPort}/x`), never).then(
    () => undefined,
    (e) => e,
  );
  assert.match(
    classifyFetchError(refused, 1000)?.reason ?? "",
    /^Cannot reach the EventStore: cannot connect to 127\.0\.0\.1:\d+: /,
  );
});

Deno.test("http1: an answer that is not HTTP/1.1 is a failure that names it", async () => {
  await using server = rawServer(async (conn) => {
    await readRequest(conn, { bytes: new Uint8Array(0) });
    await write(conn, "SSH-2.0-OpenSSH_9.6\r\n\r\n");
  });
  const error = await http1Sender({ maxAnswerBytes: 64 * 1024 })(request(server.url), never).then(
    () => undefined,
    (e) => e,
  );
  assert.equal(
    classifyFetchError(error, 1000)?.reason,
    "Cannot reach the EventStore: the EventStore's answer is not HTTP/1.1",
  );
});

Deno.test("http1: a connect that does not complete ends with the attempt's signal (a timeout, a stop)", async () => {
  const send = http1Sender({ maxAnswerBytes: 64 * 1024, connect: () => new Promise<Deno.Conn>(() => {}) });
  const controller = new AbortController();
  const reason = new DOMException("no answer within 100 ms", "TimeoutError");
  const timer = setTimeout(() => controller.abort(reason), 100);
  const outcome = await Promise.race([
    send(request("http://192.0.2.1:80/x"), controller.signal).then(() => "answered", (error) => error),
    new Promise((resolve) => setTimeout(() => resolve("still connecting after 2 s"), 2000)),
  ]);
  clearTimeout(timer);
  assert.equal(outcome, reason);
});

Deno.test("http1: a connection idle past the keep-alive time is closed, not used again", async () => {
  const ends: string[] = [];
  await using server = rawServer(async (conn, index) => {
    const pending = { bytes: new Uint8Array(0) };
    while (await readRequest(conn, pending)) {
      await write(conn, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
    }
    ends.push(`connection ${index} closed by eventsink`);
  });
  const send = http1Sender({ maxAnswerBytes: 64 * 1024, keepIdleMs: 50 });
  assert.equal((await send(request(server.url), never)).status, 202);
  assert.equal((await send(request(server.url), never)).status, 202);
  assert.equal(server.accepted(), 1, "reused while fresh");
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal((await send(request(server.url), never)).status, 202);
  assert.equal(server.accepted(), 2, "a new connection after the idle time");
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(ends, ["connection 0 closed by eventsink"]);
});
