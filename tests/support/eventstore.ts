/**
 * A stand-in for the FHIR EventStore that eventsink delivers to: it answers as the real hops-eventstore does
 * (tests/contract_test.ts holds the measured answers, and runs against both), records what it was sent, and
 * can be made unwell on purpose.
 *
 * Decisions a test author needs to know:
 * - The rules are the real store's (eventstore_rules.ts, which also says what of HAPI's validation is left
 *   out): 202 with an empty body when stored; 400 from the parser; 500 for a resource other than Bundle;
 *   422 from validation and the message checks; 415 with an empty body for any media type but
 *   application/fhir+json, bare or with fhirVersion=4.0; 401 with an empty body; 404 with an empty body for
 *   other paths and methods; 400 with an empty body for an X-Request-ID over 200 characters. No size limit.
 * - Idempotent on MessageHeader.id by content: a repeat with the same content (whatever its whitespace) is
 *   202 and not stored again, other content is 409. Bundle.id is unique: reusing it under a new message id
 *   is 500, as the real store's database constraint answers. The id is looked up when a message arrives
 *   and the message inserted after the latency, so a copy that arrives while the first is still in flight
 *   gets that 500 too, as the real store's later insert does.
 * - The real store keeps the re-encoded message; the stand-in also keeps the bytes it received
 *   (StoredMessage.body), as evidence that eventsink forwards them unchanged. The search answers the
 *   re-encoded form, as the real store does.
 * - The body is read as UTF-8 with bad bytes replaced by U+FFFD, as the real store's reader does.
 * - A request meets, in this order: the X-Request-ID check, routing, then for a POST to $process-message
 *   the token (401), the media type (415), the rules and the id lookup, then the latency, then injected
 *   faults (which replace the answer), then the insert. The latency counts from the request's arrival, so
 *   that an answer comes that long after it, not later.
 * - Injected answers are OperationOutcomes with one issue of code `exception`, like the real store's 500s.
 * - Clients reach a small TCP relay in front of an internal Deno.serve, so that a fault can close a
 *   client's connection for real.
 */
import {
  canonicalJson,
  isObject,
  type Issue,
  type JsonObject,
  judge,
  type Message,
  messageHeaderOf,
} from "./eventstore_rules.ts";

const FHIR_BASE = "/fhir/4.0";
const PROCESS_MESSAGE_PATH = `${FHIR_BASE}/$process-message`;
const SEARCH_PATH = `${FHIR_BASE}/Bundle`;
const ADMIN_PREFIX = "/_admin/";
/** The Content-Type of every FHIR answer with a body. */
const ANSWER_TYPE = "application/fhir+json; fhirVersion=4.0; charset=UTF-8";
const MAX_REQUEST_ID_LENGTH = 200;
const DEFAULT_PAGE_SIZE = 10;
const DEFAULT_WAIT_MS = 5_000;
const DEFAULT_OUTAGE_STATUS = 503;
const TRICKLE_PIECES = 4;
const RELAY_BUFFER_BYTES = 64 * 1024;
// Statuses whose responses cannot carry the OperationOutcome every injected answer has.
const BODILESS_STATUSES = new Set([204, 205, 304]);
const UTF8 = new TextDecoder("utf-8");

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
  /** Clock for the Bundle.timestamp check and receivedAt; default the system clock. */
  now?: () => Date;
  /** Called for each FHIR request once it was answered or dropped, e.g. to log it. */
  onRequest?: (request: RecordedRequest) => void;
}

/** A message the stand-in accepted, in arrival order. */
export interface StoredMessage {
  /** MessageHeader.id in its lower-case form, the idempotency key. */
  messageId: string;
  /** Bundle.id in its lower-case form, unique in the store. */
  bundleId: string;
  /** The row id the search's `_offset` counts by; failed inserts use one up too, as in PostgreSQL. */
  rowId: number;
  /** The request body exactly as received. */
  body: Uint8Array<ArrayBuffer>;
  /** The message as the real store keeps it: parsed and re-encoded. */
  resource: JsonObject;
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
  /** FHIR requests a stall holds now, not yet read. */
  held: number;
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
  stalled: boolean;
  /** The diagnostics of the 500 every insert fails with, or null. */
  writeFailure: string | null;
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
  stalled?: boolean;
  writeFailure?: string | null;
  failMessages?: Record<string, number | null>;
}

/**
 * Fault injection for POSTs to $process-message, settable while running. A POST first waits the latency,
 * then the first fault that applies answers it: pending connection drops, the outage, the next script step,
 * a failing message id. Injected answers are never stored and carry Retry-After when one is set. An outage
 * answers the search too, as a store that is down would.
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
  /**
   * Holds every FHIR request unread, as a store whose process is frozen (SIGSTOP), until called with false
   * (or reset); the held requests are then handled together, their latency counting from then.
   */
  stall(stalled: boolean): void;
  /**
   * Fails every insert with a 500 and these diagnostics (null heals), as the real store does when its
   * PostgreSQL cannot write: messages are still checked (400, 409, 422 and a repeat's 202 as usual) and the
   * search still answers.
   */
  writeFailure(diagnostics: string | null): void;
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

interface Incoming {
  req: Request;
  url: URL;
  /** Request headers, names in lower case. */
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer>;
  /** The body read as UTF-8, bad bytes replaced. */
  text: string;
  /** MessageHeader.id when the body is JSON with one, whether or not the message is valid. */
  messageId: string | null;
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
  bundleIds: Set<string>;
  /** The last row id used, as a PostgreSQL sequence counts. */
  lastRowId: number;
  /** FHIR requests a stall holds now. */
  held: number;
  log: RecordedRequest[];
  faults: FaultBook;
}

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

const FAULT_SETTERS = {
  latencyMs: (book: FaultBook, value: unknown) => {
    book.latencyMs = milliseconds(value, "latencyMs");
  },
  slowBodyMs: (book: FaultBook, value: unknown) => {
    book.slowBodyMs = milliseconds(value, "slowBodyMs");
  },
  writeFailure: (book: FaultBook, value: unknown) => {
    if (value !== null && typeof value !== "string") throw new TypeError("writeFailure must be text or null");
    book.writeFailure = value;
  },
  stalled: (book: FaultBook, value: unknown) => {
    if (typeof value !== "boolean") throw new TypeError("stalled must be true or false");
    book.stalled = value;
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
    now: options.now ?? (() => new Date()),
    authorize: authorizer(options),
    onRequest: options.onRequest ?? (() => {}),
    closing: new AbortController(),
    relayTable: { relays: new Map(), closing: false },
    timerLateMs: 0,
    changed: new Set(),
    messages: [],
    byMessageId: new Map(),
    bundleIds: new Set(),
    lastRowId: 0,
    held: 0,
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
  return exceptionResponse(500, "the EventStore stand-in failed");
}

// ---- requests ----

async function handle(state: State, req: Request, relayPort: number): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname.startsWith(ADMIN_PREFIX)) return await handleAdmin(state, req, url);
  const body = new Uint8Array(await req.arrayBuffer());
  // A frozen process's socket buffers still take the request; it is read when the process resumes.
  if (state.faults.stalled) await heldWhileStalled(state);
  const receivedAt = state.now();
  const arrivedAt = performance.now();
  const headers = Object.fromEntries(req.headers);
  const text = UTF8.decode(body);
  const incoming: Incoming = {
    req,
    url,
    headers,
    body,
    text,
    messageId: messageIdIn(text),
    receivedAt,
    arrivedAt,
    relayPort,
  };
  const answer = await answerFhir(state, incoming);
  record(state, incoming, answer);
  return answer.response;
}

async function answerFhir(state: State, incoming: Incoming): Promise<Answer> {
  // The real store rejects a long request id before it routes, whatever the path.
  if ((incoming.req.headers.get("x-request-id") ?? "").length > MAX_REQUEST_ID_LENGTH) {
    return { response: emptyResponse(400), kind: "answered" };
  }
  const route = findRoute(FHIR_ROUTES, safeDecode(incoming.url.pathname), incoming.req.method);
  if (route instanceof Response) return { response: emptyResponse(404), kind: "answered" };
  return await route(state, incoming);
}

async function handleAdmin(state: State, req: Request, url: URL): Promise<Response> {
  const route = findRoute(ADMIN_ROUTES, url.pathname, req.method);
  return route instanceof Response ? route : await route(state, req);
}

function findRoute<H>(routes: Routes<H>, path: string, method: string): H | Response {
  const byMethod = Object.hasOwn(routes, path) ? routes[path] : undefined;
  if (!byMethod) return jsonResponse(404, { error: `there is no endpoint at ${path}` });
  const handler = Object.hasOwn(byMethod, method) ? byMethod[method] : undefined;
  if (handler) return handler;
  const allowed = Object.keys(byMethod).join(", ");
  return new Response(JSON.stringify({ error: `${method} is not allowed on ${path}; use ${allowed}` }), {
    status: 405,
    headers: { allow: allowed, "content-type": "application/json" },
  });
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** The MessageHeader.id of a JSON body, for the request log and failMessage, or null. */
function messageIdIn(text: string): string | null {
  try {
    const value: unknown = JSON.parse(text);
    const id = isObject(value) ? messageHeaderOf(value)?.id : undefined;
    return typeof id === "string" ? id : null;
  } catch {
    return null;
  }
}

function record(state: State, incoming: Incoming, answer: Answer): void {
  const request: RecordedRequest = {
    method: incoming.req.method,
    path: incoming.url.pathname + incoming.url.search,
    headers: incoming.headers,
    bodyBytes: incoming.body.byteLength,
    status: answer.kind === "dropped" ? null : answer.response.status,
    dropped: answer.kind === "dropped",
    injected: answer.kind !== "answered",
    messageId: incoming.messageId,
    receivedAt: incoming.receivedAt,
  };
  state.log.push(request);
  state.onRequest(request);
  notify(state);
}

// ---- $process-message ----

async function postMessage(state: State, incoming: Incoming): Promise<Answer> {
  const signal = state.closing.signal;
  // As the real store, a message is checked and its id looked up when it arrives and inserted when its
  // processing ends: two copies of one new message in flight at once both find it absent, and the later
  // insert fails on the Bundle.id constraint.
  const checked = await checkMessage(state, incoming);
  await sleepUntil(state, incoming.arrivedAt + state.faults.latencyMs, signal);
  const fault = takeFault(state.faults, incoming.messageId);
  if (fault === "drop") return dropConnection(state, incoming.relayPort);
  const answer: Answer = fault ? { response: injectedResponse(fault), kind: "injected" } : {
    response: checked instanceof Response ? checked : insert(state, checked, incoming),
    kind: "answered",
  };
  return { ...answer, response: await trickled(answer.response, state.faults.slowBodyMs, signal) };
}

/** The answer a message gets before it is inserted, or the message to insert (not stored when it came). */
async function checkMessage(state: State, incoming: Incoming): Promise<Response | Message> {
  if (!(await state.authorize(incoming.req.headers.get("authorization")))) return emptyResponse(401);
  if (!isTakenMediaType(incoming.req.headers.get("content-type"))) return emptyResponse(415);
  const verdict = judge(incoming.text, {
    now: state.now(),
    isStored: (messageId) => state.byMessageId.has(messageId),
  });
  if (verdict.kind === "refused") {
    const [first] = verdict.issues;
    // The store's own checks and failures carry a timestamp; the validator's outcome does not.
    return first?.code === "exception" && verdict.issues.length === 1
      ? exceptionResponse(verdict.status, first.diagnostics)
      : fhirResponse(verdict.status, outcome(verdict.issues));
  }
  const existing = state.byMessageId.get(verdict.message.messageId);
  if (!existing) return verdict.message;
  if (canonicalJson(existing.resource) === verdict.message.content) return emptyResponse(202);
  return exceptionResponse(409, `A Message with ID=${verdict.message.messageId} already exists.`);
}

/** application/fhir+json in any case, with no parameter or only fhirVersion=4.0. */
function isTakenMediaType(contentType: string | null): boolean {
  if (contentType === null) return false;
  const [essence = "", ...parameters] = contentType.split(";").map((part) => part.trim().toLowerCase());
  return essence === "application/fhir+json" &&
    parameters.every((parameter) => parameter.replace(/\s*=\s*/, "=") === "fhirversion=4.0");
}

function insert(state: State, message: Message, incoming: Incoming): Response {
  if (state.faults.writeFailure !== null) return exceptionResponse(500, state.faults.writeFailure);
  const rowId = ++state.lastRowId;
  // The table's unique columns, in the order PostgreSQL checks them (bundle_id, then message_id).
  if (state.bundleIds.has(message.bundleId)) return uniqueViolation("bundle_id", message.bundleId);
  if (state.byMessageId.has(message.messageId)) return uniqueViolation("message_id", message.messageId);
  const stored: StoredMessage = {
    messageId: message.messageId,
    bundleId: message.bundleId,
    rowId,
    body: incoming.body,
    resource: message.resource,
    contentType: incoming.headers["content-type"] ?? "",
    headers: incoming.headers,
    receivedAt: incoming.receivedAt,
  };
  state.messages.push(stored);
  state.byMessageId.set(stored.messageId, stored);
  state.bundleIds.add(stored.bundleId);
  notify(state);
  return emptyResponse(202);
}

function uniqueViolation(column: string, value: string): Response {
  return exceptionResponse(
    500,
    `org.postgresql.util.PSQLException: ERROR: duplicate key value violates unique constraint "event_${column}_key"\n` +
      `  Detail: Key (${column})=(${value}) already exists.`,
  );
}

// ---- search ----

async function searchMessages(state: State, incoming: Incoming): Promise<Answer> {
  return { response: await searchResponse(state, incoming), kind: "answered" };
}

/**
 * As the real store: `_count` defaults to 10 (also when it is not a number), `_offset` is a row id that
 * the entries' row ids are greater than (0 when not a number), a `next` link only when the page is full.
 */
async function searchResponse(state: State, incoming: Incoming): Promise<Response> {
  // An outage is the whole store's; the other faults are a POST's.
  const outage = state.faults.outage;
  if (outage) {
    return injectedResponse({
      status: outage.status,
      retryAfter: outage.retryAfter ?? state.faults.retryAfter,
    });
  }
  if (!(await state.authorize(incoming.req.headers.get("authorization")))) return emptyResponse(401);
  const params = incoming.url.searchParams;
  const count = kotlinNumber(params.get("_count")) ?? DEFAULT_PAGE_SIZE;
  const offset = kotlinNumber(params.get("_offset")) ?? 0;
  if (count < 0) {
    return exceptionResponse(500, "org.postgresql.util.PSQLException: ERROR: LIMIT must not be negative");
  }
  const entry = state.messages.filter((message) => message.rowId > offset).slice(0, count).map((message) => ({
    fullUrl: `urn:uuid:${message.bundleId}`,
    resource: message.resource,
  }));
  const next = new URL(incoming.url.pathname, incoming.url);
  next.search = `?_count=${count}&_offset=${offset + count}`;
  return fhirResponse(200, {
    resourceType: "Bundle",
    id: crypto.randomUUID(),
    type: "searchset",
    timestamp: state.now().toISOString(),
    // FHIR JSON has no empty arrays.
    ...(count > 0 && entry.length === count ? { link: [{ relation: "next", url: next.href }] } : {}),
    ...(entry.length > 0 ? { entry } : {}),
  });
}

/** Kotlin's toIntOrNull: an optional sign and decimal digits, else null. */
function kotlinNumber(raw: string | null): number | null {
  return raw !== null && /^[+-]?\d+$/.test(raw) ? Number(raw) : null;
}

// ---- faults ----

function faultsApi(state: State): Faults {
  const apply = (settings: FaultSettings) => setFaultBook(state, applyFaultSettings(state.faults, settings));
  return {
    latency: (ms) => apply({ latencyMs: ms }),
    script: (steps) => apply({ script: [...steps] }),
    outage: (outage) => apply({ outage }),
    retryAfter: (value) => apply({ retryAfter: value }),
    dropConnections: (count) => apply({ dropConnections: count }),
    slowBody: (ms) => apply({ slowBodyMs: ms }),
    stall: (stalled) => apply({ stalled }),
    writeFailure: (diagnostics) => apply({ writeFailure: diagnostics }),
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
    stalled: false,
    writeFailure: null,
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
  const headers: HeadersInit = fault.retryAfter === null || fault.status < 400
    ? {}
    : { "retry-after": fault.retryAfter };
  return exceptionResponse(fault.status, injectedText(fault.status), headers);
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
    // Each pull enqueues a piece or closes: a pull that does neither would not be called again.
    async pull(controller) {
      for (let piece = pieces.shift(); piece !== undefined; piece = pieces.shift()) {
        await sleep(ms / TRICKLE_PIECES, signal);
        if (piece.byteLength > 0) return controller.enqueue(piece);
      }
      controller.close();
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
    setFaultBook(state, applyFaultSettings(state.faults, await req.json()));
  } catch (error) {
    return exceptionResponse(400, `bad fault settings: ${(error as Error).message}`);
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
  state.bundleIds.clear();
  state.lastRowId = 0;
  state.log = [];
  setFaultBook(state, noFaults());
}

/** Replaces the faults and wakes what waits on them (a stall's held requests). */
function setFaultBook(state: State, book: FaultBook): void {
  state.faults = book;
  notify(state);
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
    held: state.held,
    byStatus,
  };
}

// ---- waiting ----

async function heldWhileStalled(state: State): Promise<void> {
  state.held++;
  notify(state);
  try {
    await waitFor(state, () => !state.faults.stalled, (why) => new Error(`${why} during a stall`));
  } finally {
    state.held--;
    notify(state);
  }
}

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
  const shortfall = (why: string) =>
    new Error(`${why} while waiting for ${wanted} ${what}: ${count()} arrived`);
  return waitFor(state, () => count() >= wanted, shortfall, timeoutMs);
}

/** Resolves once `met()` holds after a change; rejects with `failure` on timeout or when the store closes. */
function waitFor(
  state: State,
  met: () => boolean,
  failure: (why: string) => Error,
  timeoutMs?: number,
): Promise<void> {
  if (met()) return Promise.resolve();
  const signal = state.closing.signal;
  if (signal.aborted) return Promise.reject(failure("the EventStore stand-in was closed"));
  return new Promise((resolve, reject) => {
    const timer = timeoutMs === undefined
      ? undefined
      : setTimeout(() => settle(failure(`timed out after ${timeoutMs} ms`)), timeoutMs);
    const check = () => {
      if (met()) settle(null);
    };
    const abort = () => settle(failure("the EventStore stand-in closed"));
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

function emptyResponse(status: number): Response {
  return new Response(null, { status });
}

/** One issue of code exception, as the real store answers its failures and its own checks. */
function exceptionResponse(status: number, diagnostics: string | undefined, headers?: HeadersInit): Response {
  const issue: Issue = { severity: "error", code: "exception", ...(diagnostics ? { diagnostics } : {}) };
  return fhirResponse(status, outcome([issue], { lastUpdated: new Date().toISOString() }), headers);
}

function outcome(issues: Issue[], meta?: { lastUpdated: string }): JsonObject {
  return { resourceType: "OperationOutcome", ...(meta ? { meta } : {}), issue: issues };
}

function fhirResponse(status: number, resource: unknown, headers?: HeadersInit): Response {
  const allHeaders = new Headers(headers);
  allHeaders.set("content-type", ANSWER_TYPE);
  // Pretty-printed, as the real store's encoder writes.
  return new Response(JSON.stringify(resource, null, 2), { status, headers: allHeaders });
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
