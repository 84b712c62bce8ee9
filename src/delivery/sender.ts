import { classifyFetchError, classifyStatus, type Outcome } from "./outcome.ts";
import { readOperationOutcome } from "./diagnostics.ts";
import { parseRetryAfter } from "./backoff.ts";
import { type TlsMaterial, tlsOptions } from "../security/tls_files.ts";
import { searchUrl } from "./request.ts";
import { USER_AGENT } from "../version.ts";
import type { Dispatcher } from "undici";
import { BodyStart } from "./body_start.ts";
import { http1Sender } from "./http1.ts";
import type { Answer, PostRequest, Send } from "./send.ts";
import type { AttemptSignals } from "./attempt_signals.ts";

/**
 * Deno's HTTP client for the EventStore and the token endpoint (deliveries over HTTP/1.1 go through
 * http1.ts or undici, see createSender): trusts the CA bundle besides the system's CAs and presents the client certificate, if
 * configured; keeps one connection alive per delivery in flight; speaks HTTP/1.1 or, if asked, HTTP/2.
 * Certificates are always verified: there is no option to turn that off.
 */
export function createEventStoreClient(
  tls: TlsMaterial,
  connections: { maxInFlight: number; http2: boolean },
): Deno.HttpClient {
  // Deno's client always verifies: it has no option to turn that off (only a command-line flag has).
  const { ca, rejectUnauthorized: _, ...identity } = tlsOptions(tls);
  return Deno.createHttpClient({
    ...(ca ? { caCerts: ca } : {}),
    ...identity,
    poolMaxIdlePerHost: connections.maxInFlight,
    http1: !connections.http2,
    http2: connections.http2,
  });
}

/** An answer body larger than this is cut: only an OperationOutcome's diagnostics are of use. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * How deliveries are sent, with the same TLS material and pool size as `client`. Plain HTTP/1.1 goes over
 * Deno's own TCP (http1.ts), HTTPS through undici's connection pool — each costs well under half the CPU
 * of Deno's fetch per request (see docs/performance.md); HTTP/2 goes through Deno's fetch on `client`,
 * which also speaks it without TLS.
 */
export function createSender(
  tls: TlsMaterial,
  connections: { maxInFlight: number; http2: boolean },
  client: Deno.HttpClient,
): Send {
  const viaFetch = fetchSender(client);
  if (connections.http2) return viaFetch;
  const viaHttp1 = http1Sender({ maxAnswerBytes: MAX_ANSWER_BYTES });
  // undici is loaded with the first HTTPS request: a plain-HTTP EventStore saves its ~9 MB of memory.
  let viaUndici: Promise<Send> | undefined;
  const undici = () =>
    viaUndici ??= import("undici").then(({ Agent }) =>
      undiciSender(
        new Agent({
          connections: connections.maxInFlight,
          // The request timeout (--request-timeout) is ours: undici's own would only differ from it.
          headersTimeout: 0,
          bodyTimeout: 0,
          connect: tlsOptions(tls),
        }),
      )
    );
  const viaTls: Send = async (request, signal) => {
    try {
      return await (await undici())(request, signal);
    } catch (error) {
      // A server that refuses eventsink's client certificate (a TLS alert) looks to undici like a closed
      // connection; Deno's fetch names the alert, so that it is reported as the configuration fault it is.
      const closed = (error as { code?: unknown }).code === "UND_ERR_SOCKET";
      if (!closed || signal.aborted || !request.url.startsWith("https:")) throw error;
      return await viaFetch(request, signal);
    }
  };
  // (Not one more async step for every plain-HTTP request.)
  return (request, signal) =>
    request.url.startsWith("http:") ? viaHttp1(request, signal) : viaTls(request, signal);
}

/**
 * Sends through undici's dispatcher, which answers by callbacks: no body stream, no promise per chunk and
 * no listener per request beyond our own, about a third less CPU per request than undici's `request()`.
 */
function undiciSender(agent: Dispatcher): Send {
  // Every delivery goes to the same URL: split it once, not per POST.
  let target = { url: "", origin: "", path: "" };
  return (request, signal) => {
    if (target.url !== request.url) {
      const url = new URL(request.url);
      target = { url: request.url, origin: url.origin, path: url.pathname + url.search };
    }
    return new Promise<Answer>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      let controller: Dispatcher.DispatchController | undefined;
      let status = 0;
      let retryAfter: string | null = null;
      const kept = new BodyStart(MAX_ANSWER_BYTES);
      // A request still queued for a connection has no controller yet: onRequestStart aborts it.
      const onAbort = () => {
        controller?.abort(signal.reason);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const answer = () => {
        signal.removeEventListener("abort", onAbort);
        resolve({ status, retryAfter, body: kept.text() });
      };
      agent.dispatch({
        origin: target.origin,
        path: target.path,
        method: "POST",
        headers: request.headers,
        body: request.body,
      }, {
        onRequestStart(started) {
          controller = started;
          if (signal.aborted) started.abort(signal.reason);
        },
        onResponseStart(_, statusCode, headers) {
          status = statusCode;
          const value = headers["retry-after"];
          retryAfter = typeof value === "string" ? value : null;
        },
        onResponseData(started, chunk) {
          kept.add(chunk);
          // Only an OperationOutcome's start is of use: answer now and drop the connection with the rest.
          if (kept.full) {
            answer();
            started.abort(new Error("answer cut at its first 64 KiB"));
          }
        },
        onResponseEnd: answer,
        onResponseError(_, error) {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      });
    });
  };
}

/** Sends with Deno's fetch. */
function fetchSender(client: Deno.HttpClient): Send {
  return async (request, signal) => {
    const response = await fetch(request.url, {
      method: "POST",
      headers: request.headers,
      // Record values are views on ordinary ArrayBuffers (never shared memory), as fetch requires.
      body: request.body as Uint8Array<ArrayBuffer>,
      signal,
      // A 301/302/303 would turn the POST into a GET; report redirects as a configuration fault instead.
      redirect: "manual",
      client,
    });
    return {
      status: response.status,
      retryAfter: response.headers.get("retry-after"),
      body: await readAnswer(response),
    };
  };
}

/**
 * Sends one POST and classifies the answer. Rejects only when `signal` aborts (eventsink is stopping or
 * lost the partition) or on a bug; every failure of the EventStore or the network becomes an Outcome.
 */
export async function post(
  request: PostRequest,
  signal: AbortSignal,
  options: { signals: AttemptSignals; send: Send },
): Promise<Outcome> {
  const attempt = options.signals.start(signal);
  try {
    const answer = await options.send(request, attempt.signal);
    const retryAfterMs = parseRetryAfter(answer.retryAfter, new Date());
    // A 2xx says nothing more (the real store's 202 has no body): the answer is read only when it failed.
    const said = answer.status < 300 || answer.body === ""
      ? undefined
      : readOperationOutcome(answer.body, request.body);
    return classifyStatus(answer.status, said, retryAfterMs);
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    const outcome = classifyFetchError(error, options.signals.timeoutMs);
    if (outcome === undefined) throw error;
    return outcome;
  } finally {
    attempt.done();
  }
}

/**
 * Asks the EventStore's search (GET `searchUrl`) and classifies the answer like a delivery's: 2xx counts as
 * delivered. A 2xx body holds stored messages, which are health data: it is discarded unread.
 */
export async function probeSearch(
  eventstoreUrl: string,
  options: { count: 0 | 1; timeoutMs: number; client: Deno.HttpClient; headers: Record<string, string> },
): Promise<Outcome> {
  try {
    const response = await fetch(searchUrl(eventstoreUrl, options.count), {
      headers: { ...options.headers, accept: "application/fhir+json", "user-agent": USER_AGENT },
      signal: AbortSignal.timeout(options.timeoutMs),
      redirect: "manual",
      client: options.client,
    });
    if (response.status >= 200 && response.status < 300) {
      await response.body?.cancel();
      return classifyStatus(response.status);
    }
    return classifyStatus(response.status, readOperationOutcome(await readAnswer(response)));
  } catch (error) {
    const outcome = classifyFetchError(error, options.timeoutMs);
    if (outcome === undefined) throw error;
    return outcome;
  }
}

/** Reads the answer body up to a limit; reading it to the end lets the connection be reused. */
async function readAnswer(response: Response): Promise<string> {
  return (await readBodyStart(response, MAX_ANSWER_BYTES)).text;
}

/**
 * The start of a body as text, at most `maxBytes` of it, and whether that was all: all of it in one go
 * when its announced length is within the limit, else chunk by chunk up to the limit (leaving the loop
 * early cancels the rest, so that a peer sending without end costs nothing but the limit).
 */
export async function readBodyStart(
  response: Response,
  maxBytes: number,
): Promise<{ text: string; complete: boolean }> {
  if (response.body === null) return { text: "", complete: true };
  if (Number(response.headers.get("content-length") ?? NaN) <= maxBytes) {
    return { text: await response.text(), complete: true };
  }
  const kept = new BodyStart(maxBytes);
  for await (const chunk of response.body) {
    kept.add(chunk);
    if (!kept.complete) break;
  }
  return { text: kept.text(), complete: kept.complete };
}
