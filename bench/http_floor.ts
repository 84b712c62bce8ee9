/**
 * What one POST costs the sending process, without Kafka and without eventsink: C keep-alive connections,
 * each sending the next POST when the last was answered, N POSTs of a fixture-sized body in all; prints
 * POSTs per second and CPU µs per POST (this process's, from /proc). Two clients:
 *
 * - `undici`: the dispatcher eventsink sends HTTPS through (src/delivery/sender.ts), over Deno's node:net;
 * - `http1`: eventsink's own plain-HTTP client (src/delivery/http1.ts), on Deno's own TCP;
 * - `deno-tcp`: a bare HTTP/1.1 exchange on Deno.connect — the request written as one buffer, the answer
 *   read to its blank line — which only works against a store that answers with an empty body, like the
 *   lean store (bench/leanstore/). It parses nothing: it is the floor a leaner client could get near.
 *
 *   deno run -A bench/http_floor.ts <store-url> <concurrency> <undici|deno-tcp> [posts]
 *
 * Start the lean store first (`.cache/leanstore/leanstore` after one `make bench`; it prints its URL).
 */
import { Agent } from "undici";
import { http1Sender } from "../src/delivery/http1.ts";
import { messageMaker } from "./messages.ts";
import { cpuSecondsOf } from "./proc.ts";

const [url, concurrencyText, client, postsText] = Deno.args;
const concurrency = Number(concurrencyText);
const posts = Number(postsText ?? "30000");
if (!url || !(concurrency >= 1) || !["undici", "http1", "deno-tcp"].includes(client ?? "") || !(posts >= 1)) {
  console.error("usage: http_floor.ts <store-url> <concurrency> <undici|http1|deno-tcp> [posts]");
  Deno.exit(2);
}
const endpoint = new URL(`${url}/fhir/4.0/$process-message`);
const body = (await messageMaker("fixtures"))().bytes;
const headers = { "content-type": "application/fhir+json; fhirVersion=4.0" };
let started = 0;

/** Sends POSTs one after another until `posts` were started, through one connection of `post`'s client. */
async function loop(post: () => Promise<void>): Promise<void> {
  while (started < posts) {
    started++;
    await post();
  }
}

function undiciLoops(): Array<Promise<void>> {
  const agent = new Agent({ connections: concurrency, headersTimeout: 0, bodyTimeout: 0 });
  const post = () =>
    new Promise<void>((resolve, reject) => {
      agent.dispatch({ origin: endpoint.origin, path: endpoint.pathname, method: "POST", headers, body }, {
        // The controller interface (onRequestStart…), as sender.ts uses it.
        onRequestStart() {},
        onResponseEnd: () => resolve(),
        onResponseError: (_, error) => reject(error),
      });
    });
  return Array.from({ length: concurrency }, () => loop(post));
}

function http1Loops(): Array<Promise<void>> {
  const send = http1Sender({ maxAnswerBytes: 64 * 1024 });
  const signal = new AbortController().signal;
  const request = { url: endpoint.href, headers, body };
  return Array.from({ length: concurrency }, () => loop(() => send(request, signal).then(() => {})));
}

async function denoTcpLoop(): Promise<void> {
  const conn = await Deno.connect({ hostname: endpoint.hostname, port: Number(endpoint.port) });
  conn.setNoDelay(true);
  const head = new TextEncoder().encode(
    `POST ${endpoint.pathname} HTTP/1.1\r\nhost: ${endpoint.host}\r\ncontent-type: ${
      headers["content-type"]
    }\r\n` +
      `content-length: ${body.length}\r\n\r\n`,
  );
  const request = new Uint8Array(head.length + body.length);
  request.set(head);
  request.set(body, head.length);
  const answer = new Uint8Array(16 * 1024);
  const endsHead = (n: number) =>
    n >= 4 && answer[n - 4] === 13 && answer[n - 3] === 10 && answer[n - 2] === 13;
  try {
    await loop(async () => {
      for (let written = 0; written < request.length;) written += await conn.write(request.subarray(written));
      let read = 0;
      while (!endsHead(read)) {
        const n = await conn.read(answer.subarray(read));
        if (n === null) throw new Error("the store closed the connection");
        read += n;
      }
    });
  } finally {
    conn.close();
  }
}

const cpuBefore = (await cpuSecondsOf(Deno.pid))!;
const startedAt = performance.now();
await Promise.all(
  client === "undici"
    ? undiciLoops()
    : client === "http1"
    ? http1Loops()
    : Array.from({ length: concurrency }, denoTcpLoop),
);
const seconds = (performance.now() - startedAt) / 1000;
const cpu = (await cpuSecondsOf(Deno.pid))! - cpuBefore;
console.log(
  `${client}, ${concurrency} connections: ${Math.round(posts / seconds).toLocaleString("en")} POST/s, ` +
    `${Math.round((cpu * 1e6) / posts)} µs CPU per POST`,
);
