/**
 * A stand-in for the FHIR EventStore that eventsink delivers to. It checks each message with the
 * EventStore's rules, stores accepted messages byte for byte, and can be made unwell on purpose.
 *
 * Decisions a test author needs to know:
 * - The idempotency key is the message id, MessageHeader.id (entry[0].resource.id), as in the original
 *   EventStore. A repeat whose body is byte-identical to the stored one is answered 202 and not stored
 *   again; any other body under the same message id is 409, even one that differs only in whitespace.
 *   Bundle.id is recorded but is not a key.
 * - 400 when the body is not a FHIR resource at all (not UTF-8 JSON, not an object, no resourceType);
 *   422 when it is a resource but not a valid message Bundle, including a resourceType other than Bundle.
 * - JSON only: application/fhir+xml is 415.
 * - A POST to $process-message meets, in this order: latency, injected faults, the token (401), the media
 *   type (415), the size limit (413), parsing (400), the message rules (422), the message id (409). The
 *   latency counts from the request's arrival, so that an answer comes that long after it, not later.
 * - Clients reach a small TCP relay in front of an internal Deno.serve, so that a fault can close a
 *   client's connection for real.
 */

const FHIR_BASE = "/fhir/4.0";
const PROCESS_MESSAGE_PATH = `${FHIR_BASE}/$process-message`;
const SEARCH_PATH = `${FHIR_BASE}/Bundle`;
const ADMIN_PREFIX = "/_admin/";
const FHIR_JSON = "application/fhir+json";
const ACCEPTED_MEDIA_TYPES = new Set([FHIR_JSON, "application/json"]);
const DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024;
const DEFAULT_PAGE_SIZE = 50;
const DEFAULT_WAIT_MS = 5_000;
const DEFAULT_OUTAGE_STATUS = 503;
const TRICKLE_PIECES = 4;
const RELAY_BUFFER_BYTES = 64 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const FHIR_INSTANT =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))$/;
const MESSAGE_RESOURCE_PATH = "Bundle.entry[0].resource";
const MESSAGE_ID_PATH = "Bundle.entry[0].resource.id";
const RESPONSE_ID_PATH = "Bundle.entry[0].resource.response.identifier";
// Statuses whose responses cannot carry the OperationOutcome every injected answer has.
const BODILESS_STATUSES = new Set([204, 205, 304]);
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Options for {@link startEventStore}. */
export interface EventStoreOptions {
  /** TCP port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on; default 127.0.0.1. */
  hostname?: string;
  /** Static bearer token every FHIR request must carry; absent means no check. Not with `authorize`. */
  token?: string;
  /** Custom credential check given the raw Authorization header (e.g. JWT verification). Not with `token`. */
  authorize?: (authorization: string | null) => boolean | Promise<boolean>;
  /** Largest accepted body in bytes; default 5 MiB. */
  maxBodyBytes?: number;
  /** Clock for the Bundle.timestamp check and receivedAt; default the system clock. */
  now?: () => Date;
  /** Called for each FHIR request once it was answered or dropped, e.g. to log it. */
  onRequest?: (request: RecordedRequest) => void;
}

/** A message the stand-in accepted, in arrival order. */
export interface StoredMessage {
  /** MessageHeader.id, the idempotency key. */
  messageId: string;
  bundleId: string;
  /** The request body exactly as received. */
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  /** Request headers, names in lower case. */
  headers: Record<string, string>;
  receivedAt: Date;
}

/** A FHIR request as the stand-in saw it (admin requests are not recorded). */
export interface RecordedRequest {
  method: string;
  /** Path with query string. */
  path: string;
  /** Request headers, names in lower case. */
  headers: Record<string, string>;
  bodyBytes: number;
  /** Status answered; null when the connection was dropped instead. */
  status: number | null;
  dropped: boolean;
  /** True when a fault chose the answer. */
  injected: boolean;
  /** MessageHeader.id when the body had one, whether or not the message was valid. */
  messageId: string | null;
  receivedAt: Date;
}

/** Counts over the recorded requests. */
export interface EventStoreStats {
  requests: number;
  stored: number;
  dropped: number;
  injected: number;
  /** Number of requests answered with each status. */
  byStatus: Record<string, number>;
}

/** A Retry-After value: whole seconds, or an HTTP-date as a Date or a formatted string. */
export type RetryAfter = number | string | Date;

/** One scripted answer: a status to answer without storing, "pass" to evaluate normally, "drop" to drop. */
export type ScriptStep = number | "pass" | "drop";

/** An open-ended outage; status defaults to 503. */
export interface OutageSettings {
  status?: number;
  retryAfter?: RetryAfter;
}

/** The faults as currently set; also the body of GET /_admin/faults. */
export interface FaultState {
  latencyMs: number;
  script: ScriptStep[];
  outage: { status: number; retryAfter: string | null } | null;
  retryAfter: string | null;
  dropConnections: number | "all";
  slowBodyMs: number;
  /** Message id to the status it is always answered with. */
  failMessages: Record<string, number>;
}

/**
 * A change to the faults, also the body of POST /_admin/faults. Keys left out stay as they are;
 * `reset: true` clears all faults before the other keys apply; a null failMessages entry heals that id.
 */
export interface FaultSettings {
  reset?: boolean;
  latencyMs?: number;
  script?: ScriptStep[];
  outage?: OutageSettings | null;
  retryAfter?: RetryAfter | null;
  dropConnections?: number | "all";
  slowBodyMs?: number;
  failMessages?: Record<string, number | null>;
}

/**
 * Fault injection for POSTs to $process-message, settable while running. A POST first waits the latency,
 * then the first fault that applies answers it: pending connection drops, the outage, the next script step,
 * a failing message id. Injected answers are never stored and carry Retry-After when one is set.
 */
export interface Faults {
  /** Answers every POST about this long after it arrived (see sleepUntil). */
  latency(ms: number): void;
  /** Answers the next POSTs with these steps in order, then normally. */
  script(steps: readonly ScriptStep[]): void;
  /** Answers every POST with the status (default 503) until reset, or until called with null. */
  outage(outage: OutageSettings | null): void;
  /** Adds this Retry-After to injected failures (an outage's own value wins); null removes it. */
  retryAfter(value: RetryAfter | null): void;
  /**
   * Reads the next `count` POSTs (or all, until reset) and closes their TCP connection without answering.
   * Deno's fetch replays a request once, unseen, when a reused keep-alive connection is closed under it
   * (not on a fresh connection), so dropping a single request may not reach the caller.
   */
  dropConnections(count: number | "all"): void;
  /** Sends response headers at once and trickles the body over this many milliseconds. */
  slowBody(ms: number): void;
  /** Always answers this message id with the status; null heals it. */
  failMessage(messageId: string, status: number | null): void;
  /** Applies several settings at once: all of them or, on a bad value, none. */
  apply(settings: FaultSettings): void;
  /** Clears every fault. */
  reset(): void;
  /** A copy of the faults as set now. */
  state(): FaultState;
}

/** Options for the wait functions. */
export interface WaitOptions {
  /** Default 5000. */
  timeoutMs?: number;
}

/** A running stand-in EventStore. */
export interface EventStore extends AsyncDisposable {
  /** Base URL without the FHIR path, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  readonly faults: Faults;
  /** Accepted messages in arrival order. */
  stored(): StoredMessage[];
  /** FHIR requests in the order they were answered or dropped. */
  requests(): RecordedRequest[];
  stats(): EventStoreStats;
  /** Resolves once at least `count` messages are stored; rejects saying how many arrived on timeout. */
  waitForStored(count: number, options?: WaitOptions): Promise<void>;
  /** Resolves once at least `count` FHIR requests are recorded; rejects saying how many on timeout. */
  waitForRequests(count: number, options?: WaitOptions): Promise<void>;
  /** Forgets stored messages and recorded requests and clears the faults. */
  reset(): void;
  /** Stops listening, closes open connections and ends pending faults; safe to call twice. */
  close(): Promise<void>;
}

interface Issue {
  severity: "error" | "information";
  code: string;
  diagnostics: string;
  expression?: string[];
}

type JsonObject = Record<string, unknown>;

type ParsedBody = { ok: true; value: unknown } | { ok: false; reason: string };

interface ReceivedBody {
  bytes: Uint8Array<ArrayBuffer>;
  size: number;
  tooLarge: boolean;
}

interface Incoming {
  req: Request;
  url: URL;
  /** Request headers, names in lower case. */
  headers: Record<string, string>;
  body: ReceivedBody;
  json: ParsedBody;
  receivedAt: Date;
  /** performance.now() at arrival. */
  arrivedAt: number;
  /** The relay's port as the internal server sees it; names the client connection to drop. */
  relayPort: number;
}

interface Answer {
  response: Response;
  kind: "answered" | "injected" | "dropped";
}

type FaultBook = Omit<FaultState, "failMessages"> & { failMessages: Map<string, number> };

type Fault = "drop" | { status: number; retryAfter: string | null };

interface Relay {
  client: Deno.TcpConn;
  upstream: Deno.TcpConn;
  open: boolean;
}

interface RelayTable {
  /** Keyed by the upstream connection's local port. */
  relays: Map<number, Relay>;
  closing: boolean;
}

interface State {
  readonly maxBodyBytes: number;
  readonly now: () => Date;
  readonly authorize: (authorization: string | null) => boolean | Promise<boolean>;
  readonly onRequest: (request: RecordedRequest) => void;
  readonly closing: AbortController;
  readonly relayTable: RelayTable;
  /** How late timers fired lately (ms, a moving average): latency waits are that much shorter. */
  timerLateMs: number;
  readonly changed: Set<() => void>;
  messages: StoredMessage[];
  byMessageId: Map<string, StoredMessage>;
  log: RecordedRequest[];
  faults: FaultBook;
}

interface RuleContext {
  now: Date;
  isStored: (messageId: string) => boolean;
}

type Rule = (bundle: JsonObject, context: RuleContext) => Issue | null;

type FhirHandler = (state: State, incoming: Incoming) => Promise<Answer>;

type AdminHandler = (state: State, req: Request) => Response | Promise<Response>;

type Routes<H> = Record<string, Record<string, H>>;

const FHIR_ROUTES: Routes<FhirHandler> = {
  [PROCESS_MESSAGE_PATH]: { POST: postMessage },
  [SEARCH_PATH]: { GET: searchMessages },
};

const ADMIN_ROUTES: Routes<AdminHandler> = {
  "/_admin/stored": { GET: (state) => jsonResponse(200, state.messages.map(storedSummary)) },
  "/_admin/requests": { GET: (state) => jsonResponse(200, state.log) },
  "/_admin/stats": { GET: (state) => jsonResponse(200, statsOf(state)) },
  "/_admin/faults": { GET: (state) => jsonResponse(200, faultState(state.faults)), POST: setFaults },
  "/_admin/reset": { POST: resetAll },
};

const MESSAGE_RULES: readonly Rule[] = [
  bundleTypeRule,
  bundleIdRule,
  timestampRule,
  firstEntryRule,
  messageIdRule,
  distinctIdsRule,
  fullUrlRule,
  responseRule,
];

const FAULT_SETTERS = {
  latencyMs: (book: FaultBook, value: unknown) => {
    book.latencyMs = milliseconds(value, "latencyMs");
  },
  slowBodyMs: (book: FaultBook, value: unknown) => {
    book.slowBodyMs = milliseconds(value, "slowBodyMs");
  },
  script: (book: FaultBook, value: unknown) => {
    book.script = scriptSteps(value);
  },
  outage: (book: FaultBook, value: unknown) => {
    book.outage = value === null ? null : outageOf(value);
  },
  retryAfter: (book: FaultBook, value: unknown) => {
    book.retryAfter = value === null ? null : retryAfterHeader(value);
  },
  dropConnections: (book: FaultBook, value: unknown) => {
    book.dropConnections = value === "all" ? "all" : wholeNumber(value, "dropConnections");
  },
  failMessages: (book: FaultBook, value: unknown) => mergeFailures(book.failMessages, value),
} satisfies Record<Exclude<keyof FaultSettings, "reset">, (book: FaultBook, value: unknown) => void>;

/** Starts a stand-in EventStore; close it (or `await using` it) when done. */
export function startEventStore(options: EventStoreOptions = {}): Promise<EventStore> {
  return Promise.try(() => openEventStore(options));
}

function openEventStore(options: EventStoreOptions): EventStore {
  const state = newState(options);
  // The public port is the one that can be taken, so it is opened before anything needs closing.
  const listener = Deno.listen({ hostname: options.hostname ?? "127.0.0.1", port: options.port ?? 0 });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {}, onError: (error) => serverError(state, error) },
    (req, info) => handle(state, req, info.remoteAddr.port),
  );
  const frontDoor = openFrontDoor(listener, server.addr.port, state.relayTable);
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= shutdown(state, frontDoor, server));
  return {
    url: baseUrl(listener.addr),
    faults: faultsApi(state),
    stored: () => [...state.messages],
    requests: () => [...state.log],
    stats: () => statsOf(state),
    waitForStored: (count, wait) =>
      waitForCount(state, () => state.messages.length, count, "stored messages", wait),
    waitForRequests: (count, wait) => waitForCount(state, () => state.log.length, count, "requests", wait),
    reset: () => resetState(state),
    close,
    [Symbol.asyncDispose]: close,
  };
}

function newState(options: EventStoreOptions): State {
  return {
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    now: options.now ?? (() => new Date()),
    authorize: authorizer(options),
    onRequest: options.onRequest ?? (() => {}),
    closing: new AbortController(),
    relayTable: { relays: new Map(), closing: false },
    timerLateMs: 0,
    changed: new Set(),
    messages: [],
    byMessageId: new Map(),
    log: [],
    faults: noFaults(),
  };
}

function authorizer(options: EventStoreOptions): State["authorize"] {
  const { token, authorize } = options;
  if (token !== undefined && authorize) throw new TypeError("pass either token or authorize, not both");
  if (authorize) return authorize;
  if (token !== undefined) return (authorization) => bearerToken(authorization) === token;
  return () => true;
}

function bearerToken(authorization: string | null): string | null {
  return authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1] ?? null;
}

function baseUrl(addr: Deno.NetAddr): string {
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return `http://${host}:${addr.port}`;
}

async function shutdown(state: State, frontDoor: { close(): Promise<void> }, server: Deno.HttpServer) {
  state.closing.abort(new Error("the EventStore stand-in is closing"));
  await frontDoor.close();
  await server.shutdown();
}

function serverError(state: State, error: unknown): Response {
  // Pending faults end with an error when the store closes; that is expected, anything else is a bug.
  if (!state.closing.signal.aborted) console.error("EventStore stand-in failed:", error);
  return outcomeResponse(500, [errorIssue("exception", "the EventStore stand-in failed")]);
}

// ---- requests ----

async function handle(state: State, req: Request, relayPort: number): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname.startsWith(ADMIN_PREFIX)) return await handleAdmin(state, req, url);
  const receivedAt = state.now();
  const arrivedAt = performance.now();
  const body = await readBody(req, state.maxBodyBytes);
  const headers = Object.fromEntries(req.headers);
  const json = parseJson(body);
  const incoming: Incoming = { req, url, headers, body, json, receivedAt, arrivedAt, relayPort };
  const route = findRoute(FHIR_ROUTES, url.pathname, req.method);
  const answer = route instanceof Response
    ? { response: route, kind: "answered" as const }
    : await route(state, incoming);
  record(state, incoming, answer);
  return answer.response;
}

async function handleAdmin(state: State, req: Request, url: URL): Promise<Response> {
  const route = findRoute(ADMIN_ROUTES, url.pathname, req.method);
  return route instanceof Response ? route : await route(state, req);
}

function findRoute<H>(routes: Routes<H>, path: string, method: string): H | Response {
  const byMethod = Object.hasOwn(routes, path) ? routes[path] : undefined;
  if (!byMethod) return outcomeResponse(404, [errorIssue("not-found", `there is no endpoint at ${path}`)]);
  const handler = Object.hasOwn(byMethod, method) ? byMethod[method] : undefined;
  if (handler) return handler;
  const allowed = Object.keys(byMethod).join(", ");
  const issue = errorIssue("not-supported", `${method} is not allowed on ${path}; use ${allowed}`);
  return outcomeResponse(405, [issue], { allow: allowed });
}

// The whole body is read even when it is too large, so that the client sees the answer rather than a reset.
async function readBody(req: Request, limit: number): Promise<ReceivedBody> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body ?? []) {
    size += chunk.byteLength;
    if (size <= limit) chunks.push(chunk);
  }
  const tooLarge = size > limit;
  return { bytes: tooLarge ? new Uint8Array() : concat(chunks, size), size, tooLarge };
}

function concat(chunks: Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

function parseJson(body: ReceivedBody): ParsedBody {
  if (body.tooLarge) return { ok: false, reason: "the body is too large to read" };
  try {
    return { ok: true, value: JSON.parse(UTF8.decode(body.bytes)) };
  } catch (error) {
    return { ok: false, reason: `the body is not UTF-8 JSON (${(error as Error).message})` };
  }
}

function record(state: State, incoming: Incoming, answer: Answer): void {
  const request: RecordedRequest = {
    method: incoming.req.method,
    path: incoming.url.pathname + incoming.url.search,
    headers: incoming.headers,
    bodyBytes: incoming.body.size,
    status: answer.kind === "dropped" ? null : answer.response.status,
    dropped: answer.kind === "dropped",
    injected: answer.kind !== "answered",
    messageId: incoming.json.ok ? messageIdOf(incoming.json.value) : null,
    receivedAt: incoming.receivedAt,
  };
  state.log.push(request);
  state.onRequest(request);
  notify(state);
}

// ---- $process-message ----

async function postMessage(state: State, incoming: Incoming): Promise<Answer> {
  const signal = state.closing.signal;
  await sleepUntil(state, incoming.arrivedAt + state.faults.latencyMs, signal);
  const fault = takeFault(state.faults, incoming.json.ok ? messageIdOf(incoming.json.value) : null);
  if (fault === "drop") return dropConnection(state, incoming.relayPort);
  const answer: Answer = fault
    ? { response: injectedResponse(fault), kind: "injected" }
    : { response: await processMessage(state, incoming), kind: "answered" };
  return { ...answer, response: await trickled(answer.response, state.faults.slowBodyMs, signal) };
}

async function processMessage(state: State, incoming: Incoming): Promise<Response> {
  const refusal = (await authRefusal(state, incoming.req)) ?? mediaTypeRefusal(incoming.req) ??
    sizeRefusal(state, incoming.body);
  if (refusal) return refusal;
  if (!incoming.json.ok) return outcomeResponse(400, [errorIssue("structure", incoming.json.reason)]);
  const resource = incoming.json.value;
  const notFhir = notAResourceIssue(resource);
  if (notFhir) return outcomeResponse(400, [notFhir]);
  const bundle = resource as JsonObject;
  if (bundle.resourceType !== "Bundle") {
    const issue = errorIssue(
      "invalid",
      `$process-message takes a Bundle, not ${bundle.resourceType}`,
      "Bundle",
    );
    return outcomeResponse(422, [issue]);
  }
  const issues = messageIssues(bundle, {
    now: state.now(),
    isStored: (messageId) => state.byMessageId.has(messageId),
  });
  if (issues.length > 0) return outcomeResponse(422, issues);
  return storeOrConflict(state, bundle, incoming);
}

async function authRefusal(state: State, req: Request): Promise<Response | null> {
  const authorization = req.headers.get("authorization");
  if (await state.authorize(authorization)) return null;
  const challenge = authorization === null
    ? 'Bearer realm="eventstore"'
    : 'Bearer realm="eventstore", error="invalid_token"';
  const diagnostics = authorization === null
    ? "a bearer token is required"
    : "the bearer token was not accepted";
  return outcomeResponse(401, [errorIssue("login", diagnostics)], { "www-authenticate": challenge });
}

function mediaTypeRefusal(req: Request): Response | null {
  const problem = mediaTypeProblem(req.headers.get("content-type"));
  return problem === null ? null : outcomeResponse(415, [errorIssue("not-supported", problem)]);
}

function mediaTypeProblem(contentType: string | null): string | null {
  if (contentType === null) return `Content-Type is required; send ${FHIR_JSON}`;
  const [essence = "", ...parameters] = contentType.split(";").map((part) => part.trim().toLowerCase());
  if (!ACCEPTED_MEDIA_TYPES.has(essence)) {
    return `Content-Type ${essence} is not supported; this stand-in speaks JSON only (${FHIR_JSON} or application/json)`;
  }
  return parameters.map(mediaTypeParameterProblem).find((problem) => problem !== null) ?? null;
}

function mediaTypeParameterProblem(parameter: string): string | null {
  const [name, value = ""] = parameter.split("=", 2).map((part) => part.trim().replace(/^"(.*)"$/, "$1"));
  if (name === "charset" && value !== "utf-8" && value !== "utf8") {
    return `charset ${value} is not supported; use utf-8`;
  }
  if (name === "fhirversion" && value !== "4.0" && !value.startsWith("4.0.")) {
    return `fhirVersion ${value} is not supported; this endpoint is FHIR 4.0`;
  }
  return null;
}

function sizeRefusal(state: State, body: ReceivedBody): Response | null {
  if (!body.tooLarge) return null;
  const diagnostics = `the body has ${body.size} bytes, more than the ${state.maxBodyBytes} accepted`;
  return outcomeResponse(413, [errorIssue("too-costly", diagnostics)]);
}

function notAResourceIssue(value: unknown): Issue | null {
  if (!isObject(value)) {
    return errorIssue("structure", "the body is not a JSON object, so not a FHIR resource");
  }
  if (typeof value.resourceType !== "string") {
    return errorIssue(
      "structure",
      "the body has no resourceType, so it is not a FHIR resource",
      "resourceType",
    );
  }
  return null;
}

function storeOrConflict(state: State, bundle: JsonObject, incoming: Incoming): Response {
  const messageId = messageIdOf(bundle) as string;
  const existing = state.byMessageId.get(messageId);
  if (existing && sameBytes(existing.body, incoming.body.bytes)) {
    return acceptedResponse(`message ${messageId} was already stored; nothing changed`);
  }
  if (existing) {
    const issue = errorIssue(
      "conflict",
      `message ${messageId} is already stored with other content`,
      MESSAGE_ID_PATH,
    );
    return outcomeResponse(409, [issue]);
  }
  store(state, {
    messageId,
    bundleId: bundle.id as string,
    body: incoming.body.bytes,
    contentType: incoming.headers["content-type"] ?? "",
    headers: incoming.headers,
    receivedAt: incoming.receivedAt,
  });
  return acceptedResponse(`message ${messageId} stored`);
}

function store(state: State, message: StoredMessage): void {
  state.messages.push(message);
  state.byMessageId.set(message.messageId, message);
  notify(state);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, index) => byte === b[index]);
}

// ---- message rules ----

function messageIssues(bundle: JsonObject, context: RuleContext): Issue[] {
  return MESSAGE_RULES.map((rule) => rule(bundle, context)).filter((issue) => issue !== null);
}

function bundleTypeRule(bundle: JsonObject): Issue | null {
  if (bundle.type === undefined) {
    return errorIssue("required", "Bundle.type is required and must be message", "Bundle.type");
  }
  if (bundle.type === "message") return null;
  return errorIssue(
    "invalid",
    `Bundle.type must be message, not ${JSON.stringify(bundle.type)}`,
    "Bundle.type",
  );
}

function bundleIdRule(bundle: JsonObject): Issue | null {
  return uuidIssue(bundle.id, "Bundle.id");
}

function timestampRule(bundle: JsonObject, { now }: RuleContext): Issue | null {
  const timestamp = bundle.timestamp;
  if (timestamp === undefined) {
    return errorIssue("required", "Bundle.timestamp is required", "Bundle.timestamp");
  }
  const at = typeof timestamp === "string" && FHIR_INSTANT.test(timestamp) ? Date.parse(timestamp) : NaN;
  if (Number.isNaN(at)) {
    return errorIssue(
      "invalid",
      "Bundle.timestamp must be a FHIR instant, e.g. 2021-04-20T15:29:14Z",
      "Bundle.timestamp",
    );
  }
  if (at <= now.getTime()) return null;
  return errorIssue("invalid", `Bundle.timestamp ${timestamp} is in the future`, "Bundle.timestamp");
}

function firstEntryRule(bundle: JsonObject): Issue | null {
  const entry = firstEntry(bundle);
  if (!entry) {
    return errorIssue(
      "required",
      "a message Bundle needs entries, the first a MessageHeader",
      MESSAGE_RESOURCE_PATH,
    );
  }
  if (messageHeaderOf(bundle)) return null;
  const found = isObject(entry.resource) ? entry.resource.resourceType : undefined;
  return errorIssue(
    "invalid",
    `the first entry must be a MessageHeader, not ${found}`,
    MESSAGE_RESOURCE_PATH,
  );
}

function messageIdRule(bundle: JsonObject): Issue | null {
  const header = messageHeaderOf(bundle);
  return header ? uuidIssue(header.id, MESSAGE_ID_PATH) : null;
}

function distinctIdsRule(bundle: JsonObject): Issue | null {
  const header = messageHeaderOf(bundle);
  if (!header || typeof bundle.id !== "string" || bundle.id !== header.id) return null;
  return errorIssue("invalid", "Bundle.id and MessageHeader.id must differ", "Bundle.id");
}

function fullUrlRule(bundle: JsonObject): Issue | null {
  const header = messageHeaderOf(bundle);
  if (!header || typeof header.id !== "string") return null;
  const expected = `urn:uuid:${header.id}`;
  if (firstEntry(bundle)?.fullUrl === expected) return null;
  return errorIssue("invalid", `Bundle.entry[0].fullUrl must be ${expected}`, "Bundle.entry[0].fullUrl");
}

function responseRule(bundle: JsonObject, { isStored }: RuleContext): Issue | null {
  const response = messageHeaderOf(bundle)?.response;
  if (response === undefined) return null;
  const identifier = isObject(response) ? response.identifier : undefined;
  if (typeof identifier !== "string") {
    return errorIssue(
      "required",
      "MessageHeader.response needs the identifier of the message it answers",
      RESPONSE_ID_PATH,
    );
  }
  if (isStored(identifier)) return null;
  return errorIssue(
    "not-found",
    `MessageHeader.response.identifier ${identifier} names no stored message`,
    RESPONSE_ID_PATH,
  );
}

function uuidIssue(value: unknown, expression: string): Issue | null {
  if (value === undefined) return errorIssue("required", `${expression} is required`, expression);
  if (typeof value === "string" && UUID.test(value)) return null;
  return errorIssue("invalid", `${expression} must be a UUID`, expression);
}

function firstEntry(bundle: JsonObject): JsonObject | undefined {
  const entries = bundle.entry;
  return Array.isArray(entries) && isObject(entries[0]) ? entries[0] : undefined;
}

function messageHeaderOf(bundle: JsonObject): JsonObject | undefined {
  const resource = firstEntry(bundle)?.resource;
  return isObject(resource) && resource.resourceType === "MessageHeader" ? resource : undefined;
}

function messageIdOf(value: unknown): string | null {
  const id = isObject(value) ? messageHeaderOf(value)?.id : undefined;
  return typeof id === "string" ? id : null;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// ---- search ----

async function searchMessages(state: State, incoming: Incoming): Promise<Answer> {
  return { response: await searchResponse(state, incoming), kind: "answered" };
}

async function searchResponse(state: State, incoming: Incoming): Promise<Response> {
  const refusal = await authRefusal(state, incoming.req);
  if (refusal) return refusal;
  const params = incoming.url.searchParams;
  const count = nonNegativeInteger(params.get("_count"), DEFAULT_PAGE_SIZE);
  const offset = nonNegativeInteger(params.get("_offset"), 0);
  if (count === null || offset === null) {
    return outcomeResponse(400, [errorIssue("invalid", "_count and _offset must be non-negative integers")]);
  }
  return fhirResponse(200, searchset(state, incoming.url, count, offset));
}

function nonNegativeInteger(raw: string | null, fallback: number): number | null {
  if (raw === null) return fallback;
  return /^\d+$/.test(raw) ? Number(raw) : null;
}

function searchset(state: State, url: URL, count: number, offset: number): JsonObject {
  const total = state.messages.length;
  const entry = state.messages.slice(offset, offset + count).map((message) => ({
    fullUrl: `urn:uuid:${message.bundleId}`,
    resource: JSON.parse(UTF8.decode(message.body)),
    search: { mode: "match" },
  }));
  return {
    resourceType: "Bundle",
    id: crypto.randomUUID(),
    type: "searchset",
    timestamp: state.now().toISOString(),
    total,
    link: pageLinks(url, count, offset, total),
    // FHIR JSON has no empty arrays.
    ...(entry.length > 0 ? { entry } : {}),
  };
}

function pageLinks(
  url: URL,
  count: number,
  offset: number,
  total: number,
): { relation: string; url: string }[] {
  const links = [{ relation: "self", url: url.href }];
  if (count > 0 && offset + count < total) {
    const next = new URL(url);
    next.searchParams.set("_count", String(count));
    next.searchParams.set("_offset", String(offset + count));
    links.push({ relation: "next", url: next.href });
  }
  return links;
}

// ---- faults ----

function faultsApi(state: State): Faults {
  const apply = (settings: FaultSettings) => {
    state.faults = applyFaultSettings(state.faults, settings);
  };
  return {
    latency: (ms) => apply({ latencyMs: ms }),
    script: (steps) => apply({ script: [...steps] }),
    outage: (outage) => apply({ outage }),
    retryAfter: (value) => apply({ retryAfter: value }),
    dropConnections: (count) => apply({ dropConnections: count }),
    slowBody: (ms) => apply({ slowBodyMs: ms }),
    failMessage: (messageId, status) => apply({ failMessages: { [messageId]: status } }),
    apply,
    reset: () => apply({ reset: true }),
    state: () => faultState(state.faults),
  };
}

function noFaults(): FaultBook {
  return {
    latencyMs: 0,
    script: [],
    outage: null,
    retryAfter: null,
    dropConnections: 0,
    slowBodyMs: 0,
    failMessages: new Map(),
  };
}

function faultState(book: FaultBook): FaultState {
  const copy = structuredClone(book);
  return { ...copy, failMessages: Object.fromEntries(copy.failMessages) };
}

// Settings apply to a copy that replaces the current faults only when every value was valid.
function applyFaultSettings(current: FaultBook, settings: unknown): FaultBook {
  if (!isObject(settings)) throw new TypeError("fault settings must be an object");
  const { reset, ...changes } = settings;
  if (reset !== undefined && typeof reset !== "boolean") throw new TypeError("reset must be true or false");
  const draft = reset ? noFaults() : structuredClone(current);
  for (const [key, value] of Object.entries(changes)) {
    if (!Object.hasOwn(FAULT_SETTERS, key)) throw new TypeError(`unknown fault setting ${key}`);
    if (value !== undefined) FAULT_SETTERS[key as keyof typeof FAULT_SETTERS](draft, value);
  }
  return draft;
}

function milliseconds(value: unknown, name: string): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value;
  throw new RangeError(`${name} must be a non-negative number of milliseconds`);
}

function wholeNumber(value: unknown, name: string): number {
  if (Number.isInteger(value) && (value as number) >= 0) return value as number;
  throw new RangeError(`${name} must be a non-negative integer or "all"`);
}

function injectableStatus(value: unknown): number {
  if (
    Number.isInteger(value) && (value as number) >= 200 && (value as number) <= 599 &&
    !BODILESS_STATUSES.has(value as number)
  ) {
    return value as number;
  }
  throw new RangeError(
    `status ${JSON.stringify(value)} cannot be injected; use 200-599 except 204, 205 and 304`,
  );
}

function scriptSteps(value: unknown): ScriptStep[] {
  if (!Array.isArray(value)) throw new TypeError('script must be an array of statuses, "pass" and "drop"');
  return value.map((step) => step === "pass" || step === "drop" ? step : injectableStatus(step));
}

function outageOf(value: unknown): FaultBook["outage"] {
  if (!isObject(value)) throw new TypeError("outage must be an object with status and retryAfter, or null");
  return {
    status: value.status === undefined ? DEFAULT_OUTAGE_STATUS : injectableStatus(value.status),
    retryAfter: value.retryAfter === undefined ? null : retryAfterHeader(value.retryAfter),
  };
}

function retryAfterHeader(value: unknown): string {
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toUTCString();
  if (Number.isInteger(value) && (value as number) >= 0) return String(value);
  if (typeof value === "string" && value.trim() !== "") return value;
  throw new RangeError("retryAfter must be whole seconds, a Date or an HTTP-date string");
}

function mergeFailures(failures: Map<string, number>, value: unknown): void {
  if (!isObject(value)) throw new TypeError("failMessages must map message ids to statuses (or null)");
  for (const [messageId, status] of Object.entries(value)) {
    if (status === null) failures.delete(messageId);
    else failures.set(messageId, injectableStatus(status));
  }
}

function takeFault(book: FaultBook, messageId: string | null): Fault | null {
  if (takeDrop(book)) return "drop";
  if (book.outage) {
    return { status: book.outage.status, retryAfter: book.outage.retryAfter ?? book.retryAfter };
  }
  const step = book.script.shift();
  if (step === "drop") return "drop";
  if (typeof step === "number") return { status: step, retryAfter: book.retryAfter };
  const failing = messageId === null ? undefined : book.failMessages.get(messageId);
  return failing === undefined ? null : { status: failing, retryAfter: book.retryAfter };
}

function takeDrop(book: FaultBook): boolean {
  if (book.dropConnections === "all") return true;
  if (book.dropConnections === 0) return false;
  book.dropConnections -= 1;
  return true;
}

function injectedResponse(fault: Exclude<Fault, "drop">): Response {
  if (fault.status < 400) {
    const issue = {
      severity: "information" as const,
      code: "informational",
      diagnostics: injectedText(fault.status),
    };
    return outcomeResponse(fault.status, [issue]);
  }
  const code = fault.status === 429 ? "throttled" : fault.status >= 500 ? "transient" : "processing";
  const headers: HeadersInit = fault.retryAfter === null ? {} : { "retry-after": fault.retryAfter };
  return outcomeResponse(fault.status, [errorIssue(code, injectedText(fault.status))], headers);
}

function injectedText(status: number): string {
  return `fault injected by the EventStore stand-in: answered ${status}, the message was not stored`;
}

function dropConnection(state: State, relayPort: number): Answer {
  const relay = state.relayTable.relays.get(relayPort);
  if (!relay) throw new Error(`no client connection is relayed through port ${relayPort}`);
  closeRelay(relay);
  // The internal server still wants an answer; it goes nowhere because the connection is gone.
  return { response: new Response(null, { status: 204 }), kind: "dropped" };
}

async function trickled(response: Response, ms: number, signal: AbortSignal): Promise<Response> {
  if (ms <= 0) return response;
  const pieces = split(new Uint8Array(await response.arrayBuffer()), TRICKLE_PIECES);
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      await sleep(ms / TRICKLE_PIECES, signal);
      const piece = pieces.shift();
      if (piece && piece.byteLength > 0) controller.enqueue(piece);
      if (pieces.length === 0) controller.close();
    },
  });
  return new Response(body, { status: response.status, headers: response.headers });
}

function split(bytes: Uint8Array, count: number): Uint8Array[] {
  const size = Math.ceil(bytes.byteLength / count);
  return Array.from({ length: count }, (_, index) => bytes.subarray(index * size, (index + 1) * size));
}

/**
 * Waits until `deadline` (a performance.now() time). Deno's timers fire a millisecond or two late; the wait
 * asked for is shortened by the lateness seen lately, so that the wait ends near the deadline on average.
 */
async function sleepUntil(state: State, deadline: number, signal: AbortSignal): Promise<void> {
  const wait = deadline - performance.now();
  if (wait <= 0) return;
  const asked = Math.max(0, wait - state.timerLateMs);
  const startedAt = performance.now();
  await sleep(asked, signal);
  const late = Math.min(performance.now() - startedAt - asked, 5); // one slow turn must not skew it
  state.timerLateMs = 0.9 * state.timerLateMs + 0.1 * Math.max(late, 0);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", abort);
      resolve();
    }, ms);
    function abort() {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal.addEventListener("abort", abort, { once: true });
  });
}

// ---- admin ----

function storedSummary(message: StoredMessage) {
  const { messageId, bundleId, contentType, receivedAt } = message;
  return { messageId, bundleId, contentType, size: message.body.byteLength, receivedAt };
}

async function setFaults(state: State, req: Request): Promise<Response> {
  try {
    state.faults = applyFaultSettings(state.faults, await req.json());
  } catch (error) {
    return outcomeResponse(400, [errorIssue("invalid", `bad fault settings: ${(error as Error).message}`)]);
  }
  return jsonResponse(200, faultState(state.faults));
}

function resetAll(state: State): Response {
  resetState(state);
  return new Response(null, { status: 204 });
}

function resetState(state: State): void {
  state.messages = [];
  state.byMessageId.clear();
  state.log = [];
  state.faults = noFaults();
}

function statsOf(state: State): EventStoreStats {
  const byStatus: Record<string, number> = {};
  for (const { status } of state.log) {
    if (status !== null) byStatus[status] = (byStatus[status] ?? 0) + 1;
  }
  return {
    requests: state.log.length,
    stored: state.messages.length,
    dropped: state.log.filter((request) => request.dropped).length,
    injected: state.log.filter((request) => request.injected).length,
    byStatus,
  };
}

// ---- waiting ----

function notify(state: State): void {
  for (const check of [...state.changed]) check();
}

function waitForCount(
  state: State,
  count: () => number,
  wanted: number,
  what: string,
  { timeoutMs = DEFAULT_WAIT_MS }: WaitOptions = {},
): Promise<void> {
  if (count() >= wanted) return Promise.resolve();
  const signal = state.closing.signal;
  const shortfall = (why: string) =>
    new Error(`${why} while waiting for ${wanted} ${what}: ${count()} arrived`);
  if (signal.aborted) return Promise.reject(shortfall("the EventStore stand-in was closed"));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => settle(shortfall(`timed out after ${timeoutMs} ms`)), timeoutMs);
    const check = () => {
      if (count() >= wanted) settle(null);
    };
    const abort = () => settle(shortfall("the EventStore stand-in closed"));
    function settle(error: Error | null) {
      clearTimeout(timer);
      state.changed.delete(check);
      signal.removeEventListener("abort", abort);
      if (error) reject(error);
      else resolve();
    }
    state.changed.add(check);
    signal.addEventListener("abort", abort);
  });
}

// ---- responses ----

function errorIssue(code: string, diagnostics: string, expression?: string): Issue {
  return { severity: "error", code, diagnostics, ...(expression ? { expression: [expression] } : {}) };
}

function outcomeResponse(status: number, issues: Issue[], headers?: HeadersInit): Response {
  return fhirResponse(status, { resourceType: "OperationOutcome", issue: issues }, headers);
}

function acceptedResponse(diagnostics: string): Response {
  return outcomeResponse(202, [{ severity: "information", code: "informational", diagnostics }]);
}

function fhirResponse(status: number, resource: unknown, headers?: HeadersInit): Response {
  const allHeaders = new Headers(headers);
  allHeaders.set("content-type", FHIR_JSON);
  return new Response(JSON.stringify(resource), { status, headers: allHeaders });
}

function jsonResponse(status: number, value: unknown): Response {
  return Response.json(value, { status });
}

// ---- the front door: a TCP relay that can close a client's connection ----

function openFrontDoor(listener: Deno.TcpListener, upstreamPort: number, table: RelayTable) {
  const running = new Set<Promise<void>>();
  const accepting = acceptAll(listener, (client) => {
    const done = relay(client, upstreamPort, table).finally(() => running.delete(done));
    running.add(done);
  });
  return {
    async close(): Promise<void> {
      table.closing = true;
      listener.close();
      await accepting;
      for (const open of table.relays.values()) closeRelay(open);
      await Promise.all(running);
    },
  };
}

async function acceptAll(
  listener: Deno.TcpListener,
  onConnection: (client: Deno.TcpConn) => void,
): Promise<void> {
  for await (const client of listener) onConnection(client);
}

async function relay(client: Deno.TcpConn, upstreamPort: number, table: RelayTable): Promise<void> {
  const upstream = await Deno.connect({ hostname: "127.0.0.1", port: upstreamPort }).catch(() => null);
  if (!upstream) return client.close();
  const link: Relay = { client, upstream, open: true };
  // Small writes must not wait for Nagle's algorithm, or every answer gains tens of milliseconds.
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  if (table.closing) return closeRelay(link);
  const key = upstream.localAddr.port;
  table.relays.set(key, link);
  await Promise.all([pump(client, upstream, link), pump(upstream, client, link)]);
  closeRelay(link);
  table.relays.delete(key);
}

async function pump(from: Deno.TcpConn, to: Deno.TcpConn, link: Relay): Promise<void> {
  const buffer = new Uint8Array(RELAY_BUFFER_BYTES);
  try {
    for (let read = await from.read(buffer); read !== null; read = await from.read(buffer)) {
      await writeAll(to, buffer.subarray(0, read));
    }
    await to.closeWrite();
  } catch {
    // One side went away or was dropped on purpose: end both so the other direction stops too.
    closeRelay(link);
  }
}

async function writeAll(conn: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.byteLength;) written += await conn.write(bytes.subarray(written));
}

function closeRelay(link: Relay): void {
  if (!link.open) return;
  link.open = false;
  link.client.close();
  link.upstream.close();
}
