/**
 * Hostile peers for the security tests: an EventStore and a token endpoint on 127.0.0.1 that say back what
 * eventsink sent them (its credentials, its message), or put control characters and forged log lines into
 * their answers. Each is a Deno.serve server that answers with what the test's function makes of a request
 * and counts the requests.
 */

/** A request as a hostile peer saw it. */
export interface SeenRequest {
  /** 1 for the first request to this peer. */
  n: number;
  method: string;
  /** Path and query. */
  path: string;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: string;
}

/** A running hostile peer. */
export interface HostilePeer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`: an EventStore's base URL. */
  url: string;
  /** The token endpoint's URL, for `--oauth-token-url`. */
  tokenUrl: string;
  requests(): SeenRequest[];
  close(): Promise<void>;
}

/** Starts a peer that answers each request with `answer(request)`. */
export function startHostilePeer(answer: (request: SeenRequest) => Response): HostilePeer {
  const seen: SeenRequest[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    const one: SeenRequest = {
      n: seen.length + 1,
      method: request.method,
      path: `${url.pathname}${url.search}`,
      headers: Object.fromEntries(request.headers),
      body: await request.text(),
    };
    seen.push(one);
    return answer(one);
  });
  const url = `http://127.0.0.1:${server.addr.port}`;
  let closed: Promise<void> | undefined;
  const close = () => closed ??= server.shutdown();
  return {
    url,
    tokenUrl: `${url}/token`,
    requests: () => [...seen],
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** `count` characters of filler, to put what follows at a chosen position of a text. */
export function filler(count: number): string {
  return "x".repeat(count);
}

/** The request's headers (all of them, or those `names`), as `name: value` pairs. */
export function echoHeaders(request: SeenRequest, names?: string[]): string {
  return Object.entries(request.headers)
    .filter(([name]) => names === undefined || names.includes(name))
    .map(([name, value]) => `${name}: ${value}`)
    .join(", ");
}

/** An OperationOutcome with one error issue carrying `diagnostics`, as hops-eventstore answers. */
export function outcomeResponse(status: number, diagnostics: string): Response {
  const outcome = {
    resourceType: "OperationOutcome",
    issue: [{ severity: "error", code: "processing", diagnostics }],
  };
  return new Response(JSON.stringify(outcome, null, 2), {
    status,
    headers: { "content-type": "application/fhir+json; fhirVersion=4.0; charset=UTF-8" },
  });
}

/** What an echoing EventStore says back. */
export interface EchoStoreOptions {
  /** The status of the n-th answer (a number: of every answer). */
  status: number | ((n: number) => number);
  /** The diagnostics of an answer other than 2xx; default: every request header. */
  diagnostics?: (request: SeenRequest) => string;
}

/** An EventStore that answers with the chosen status and diagnostics echoing the request (2xx: empty). */
export function startEchoStore(options: EchoStoreOptions): HostilePeer {
  return startHostilePeer((request) => {
    const status = typeof options.status === "number" ? options.status : options.status(request.n);
    if (status >= 200 && status < 300) return new Response(null, { status });
    return outcomeResponse(status, (options.diagnostics ?? ((r) => echoHeaders(r)))(request));
  });
}

/** A token endpoint's JSON answer (RFC 6749 §5.1, §5.2). */
export function tokenResponse(status: number, fields: Record<string, unknown>): Response {
  return Response.json(fields, { status, headers: { "cache-control": "no-store" } });
}

/**
 * A token endpoint that refuses every client with `invalid_client` and says back, in `error_description`,
 * what it was sent: the form body and the Authorization header (after `pad` characters of filler).
 */
export function startEchoTokenEndpoint(options: { status?: number; pad?: number } = {}): HostilePeer {
  return startHostilePeer((request) =>
    tokenResponse(options.status ?? 401, {
      error: "invalid_client",
      error_description: `${filler(options.pad ?? 0)}body=${request.body}; authorization=${
        request.headers.authorization ?? "(none)"
      }`,
    })
  );
}

/** A token endpoint that answers every request with `status` and these fields (injected values). */
export function startTokenEndpoint(status: number, fields: Record<string, unknown>): HostilePeer {
  return startHostilePeer(() => tokenResponse(status, fields));
}
