/**
 * Bearer tokens for the EventStore: a static token, or OAuth2 client credentials (RFC 6749 §4.4) from a
 * token endpoint given directly or by OpenID Connect discovery. Tokens are cached until shortly before
 * they expire, one request serves every delivery waiting for a token, and a token the EventStore refuses
 * (401) is replaced once before the 401 counts as a configuration fault.
 */
import { isSecureOrLocal } from "../security/transport.ts";
import type { EventStoreCredentials } from "../security/credentials.ts";
import { parseRetryAfter } from "./backoff.ts";
import { classifyFetchError, type Outcome } from "./outcome.ts";
import type { Secret } from "../security/secrets.ts";
import { USER_AGENT } from "../version.ts";

/** Why there is no token: a failure outcome for the delivery that needed one. */
export type TokenFailure = Extract<Outcome, { kind: "retry" | "config-fault" }>;

/** A token, or why there is none. */
export type TokenResult = { kind: "token"; value: string } | TokenFailure;

/** Bearer tokens for the EventStore. */
export interface TokenSource {
  /** The current token, cached or fetched; rejects only when `signal` aborts. */
  token(signal: AbortSignal): Promise<TokenResult>;
  /** The EventStore refused `rejected` (401): true when a newer token is (or will be) there to try. */
  refresh(rejected: string): boolean;
}

/** A static token: nothing to refresh. */
export function staticTokenSource(token: Secret): TokenSource {
  const result: TokenResult = { kind: "token", value: token.reveal() };
  return { token: () => Promise.resolve(result), refresh: () => false };
}

/**
 * Sends with a bearer token. When the EventStore answers 401 and a newer token can be had, sends once more
 * with it; a second 401 stays a configuration fault.
 */
export async function sendWithToken(
  tokens: TokenSource,
  send: (token: string) => Promise<Outcome>,
  signal: AbortSignal,
): Promise<Outcome> {
  const first = await tokens.token(signal);
  if (first.kind !== "token") return first;
  const outcome = await send(first.value);
  if (outcome.kind !== "config-fault" || outcome.status !== 401 || !tokens.refresh(first.value)) {
    return outcome;
  }
  const second = await tokens.token(signal);
  return second.kind === "token" ? await send(second.value) : second;
}

/** Sends with the bearer token when there is a token source (one renewal on a 401), else as it is. */
export function authorized(
  tokens: TokenSource | undefined,
  send: (headers: Record<string, string>) => Promise<Outcome>,
  signal: AbortSignal,
): Promise<Outcome> {
  if (tokens === undefined) return send({});
  return sendWithToken(tokens, (token) => send({ authorization: `Bearer ${token}` }), signal);
}

/** A token as the token endpoint issued it. */
export interface IssuedToken {
  value: string;
  /** From `expires_in`; undefined when the endpoint did not say. */
  lifetimeMs: number | undefined;
}

/** What one token request came to. */
export type FetchResult = { kind: "token"; token: IssuedToken } | TokenFailure;

/** Assumed lifetime of a token whose endpoint gave no `expires_in` (RFC 6749 only recommends it). */
const DEFAULT_LIFETIME_MS = 5 * 60_000;
/** A token is replaced this long before it expires at most; short-lived ones a tenth of their lifetime before. */
const MAX_REFRESH_MARGIN_MS = 60_000;
/**
 * After a 401 forced a new token, another 401 forces the next one no sooner than this: an EventStore that
 * refuses every token (wrong audience) must not turn each retry into a token request.
 */
export const FORCED_REFRESH_INTERVAL_MS = 30_000;

/** When a token obtained at `obtainedAt` should be replaced. Pure. */
export function refreshTime(obtainedAt: number, lifetimeMs: number | undefined): number {
  const lifetime = lifetimeMs ?? DEFAULT_LIFETIME_MS;
  return obtainedAt + lifetime - Math.min(MAX_REFRESH_MARGIN_MS, lifetime / 10);
}

/**
 * Caches tokens from `fetchToken` until {@link refreshTime}. Callers arriving while a fetch runs share it;
 * a failed fetch is not cached (each caller backs off and asks again). `onToken` sees each new token.
 */
export function createTokenCache(
  fetchToken: () => Promise<FetchResult>,
  options: { now: () => number; onToken?: (value: string) => void },
): TokenSource {
  let cached: { value: string; refreshAt: number } | undefined;
  let pending: Promise<TokenResult> | undefined;
  let lastForcedAt = -Infinity;

  const fetchShared = (): Promise<TokenResult> => {
    const requestedAt = options.now();
    pending ??= fetchToken().then((result) => {
      if (result.kind !== "token") return result;
      options.onToken?.(result.token.value);
      // Timed from the request, not the answer: the token's clock started before it reached us.
      cached = { value: result.token.value, refreshAt: refreshTime(requestedAt, result.token.lifetimeMs) };
      return { kind: "token" as const, value: result.token.value };
    }).finally(() => pending = undefined);
    return pending;
  };

  return {
    token(signal) {
      if (cached !== undefined && options.now() < cached.refreshAt) {
        return Promise.resolve({ kind: "token", value: cached.value });
      }
      return raceAbort(fetchShared(), signal);
    },
    refresh(rejected) {
      if (cached?.value !== rejected) return true; // already replaced, or being fetched
      if (options.now() - lastForcedAt < FORCED_REFRESH_INTERVAL_MS) return false;
      lastForcedAt = options.now();
      cached = undefined;
      return true;
    },
  };
}

/** Settles like `promise`, or rejects with the signal's reason as soon as it aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** OAuth2 settings with the client secret read. */
export type OAuth2Client = Extract<EventStoreCredentials, { kind: "oauth2" }>;

/** A POST to the token endpoint. */
export interface TokenRequest {
  headers: Record<string, string>;
  body: string;
}

/** The client credentials grant request, with the client authenticated as configured. Pure. */
export function tokenRequest(client: OAuth2Client): TokenRequest {
  const form = new URLSearchParams({ grant_type: "client_credentials" });
  if (client.scope !== undefined) form.set("scope", client.scope);
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    accept: "application/json",
    "user-agent": USER_AGENT,
  };
  if (client.clientAuth === "client_secret_basic") {
    // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and base64-encoded.
    const pair = `${formEncode(client.clientId)}:${formEncode(client.clientSecret.reveal())}`;
    headers.authorization = `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode(pair)))}`;
  } else {
    form.set("client_id", client.clientId);
    form.set("client_secret", client.clientSecret.reveal());
  }
  return { headers, body: form.toString() };
}

function formEncode(text: string): string {
  return new URLSearchParams({ x: text }).toString().slice(2);
}

/** Longest error description kept from a token endpoint's answer. */
const MAX_DESCRIPTION_CHARS = 300;

/** OAuth2 errors (RFC 6749 §5.2) that no retry can fix. */
const CLIENT_ERRORS: Record<string, string> = {
  invalid_client: "refused eventsink's client credentials: check --oauth-client-id and the client secret",
  unauthorized_client: "does not allow this client the client credentials grant",
  invalid_scope: "refused the scope: check --oauth-scope",
  invalid_request: "found the token request malformed",
  invalid_grant: "refused the grant",
  unsupported_grant_type: "does not support the client credentials grant",
};

/**
 * Classifies a token endpoint's answer: a token; a transient failure (408, 425, 429, 5xx); or a
 * configuration fault (a wrong secret, scope or URL). Never quotes the answer beyond the OAuth2 error
 * fields, which carry no token. Pure.
 */
export function classifyTokenAnswer(
  endpoint: string,
  status: number,
  body: string,
  retryAfterMs?: number,
): FetchResult {
  const who = `The token endpoint ${endpoint}`;
  const json = parseJsonObject(body);
  if (status >= 200 && status < 300) {
    const value = json?.access_token;
    if (typeof value !== "string" || value === "") {
      return { kind: "config-fault", status, reason: `${who} answered ${status} without an access_token` };
    }
    const type = json?.token_type;
    if (typeof type === "string" && type.toLowerCase() !== "bearer") {
      return {
        kind: "config-fault",
        status,
        reason: `${who} issued a "${type}" token; eventsink sends bearer tokens`,
      };
    }
    const expiresIn = Number(json?.expires_in);
    const lifetimeMs = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1_000 : undefined;
    return { kind: "token", token: { value, lifetimeMs } };
  }
  if ([408, 425, 429].includes(status) || (status >= 500 && status < 600)) {
    const reason = `${who} answered ${status}`;
    return retryAfterMs === undefined
      ? { kind: "retry", status, reason }
      : { kind: "retry", status, reason, retryAfterMs };
  }
  const error = typeof json?.error === "string" ? json.error : undefined;
  const description = typeof json?.error_description === "string"
    ? `: ${json.error_description.slice(0, MAX_DESCRIPTION_CHARS)}`
    : "";
  const meaning = error === undefined ? undefined : CLIENT_ERRORS[error];
  const reason = meaning !== undefined
    ? `${who} ${meaning} (${status} ${error}${description})`
    : `${who} answered ${status}${error === undefined ? "" : ` ${error}${description}`}`;
  return { kind: "config-fault", status, reason };
}

/** Reads the token endpoint from an OpenID Connect discovery document. Pure. */
export function classifyDiscoveryAnswer(
  documentUrl: string,
  status: number,
  body: string,
): { kind: "endpoint"; tokenUrl: string } | TokenFailure {
  const who = `The OpenID Connect discovery document ${documentUrl}`;
  if ([408, 425, 429].includes(status) || (status >= 500 && status < 600)) {
    return { kind: "retry", status, reason: `${who} answered ${status}` };
  }
  if (status < 200 || status >= 300) {
    return {
      kind: "config-fault",
      status,
      reason: `${who} answered ${status} (check --oauth-discovery-url)`,
    };
  }
  const endpoint = parseJsonObject(body)?.token_endpoint;
  if (typeof endpoint !== "string" || !URL.canParse(endpoint)) {
    return {
      kind: "config-fault",
      status,
      reason: `${who} names no token_endpoint (check --oauth-discovery-url)`,
    };
  }
  if (!isSecureOrLocal(endpoint)) {
    return {
      kind: "config-fault",
      status,
      reason: `${who} names a token endpoint that is not https: ${endpoint}`,
    };
  }
  return { kind: "endpoint", tokenUrl: new URL(endpoint).href };
}

function parseJsonObject(body: string): Record<string, unknown> | undefined {
  try {
    const parsed = JSON.parse(body);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The token source for the configured credentials, or undefined when eventsink sends none. Every OAuth2
 * token obtained is passed to `onToken` (to be masked in log lines).
 */
export function createTokenSource(
  auth: EventStoreCredentials,
  options: TokenFetchOptions & { onToken: (value: string) => void },
): TokenSource | undefined {
  switch (auth.kind) {
    case "none":
      return undefined;
    case "token":
      return staticTokenSource(auth.token);
    case "oauth2":
      return createTokenCache(oauth2TokenFetcher(auth, options), { now: Date.now, onToken: options.onToken });
  }
}

/** How token requests reach the network. */
export interface TokenFetchOptions {
  timeoutMs: number;
  /** For a custom CA or client certificate (see --eventstore-ca). */
  client?: Deno.HttpClient;
  now?: () => Date;
}

/**
 * Fetches tokens with client credentials. With a discovery URL, the token endpoint is looked up on first
 * use and kept. Never rejects: every failure is a {@link TokenFailure}.
 */
export function oauth2TokenFetcher(
  client: OAuth2Client,
  options: TokenFetchOptions,
): () => Promise<FetchResult> {
  let tokenUrl = "tokenUrl" in client.endpoint ? client.endpoint.tokenUrl : undefined;
  const now = options.now ?? (() => new Date());
  const get = async (url: string, init: RequestInit, peer: string) => {
    try {
      const response = await fetch(url, {
        ...init,
        redirect: "manual",
        signal: AbortSignal.timeout(options.timeoutMs),
        ...(options.client ? { client: options.client } : {}),
      });
      return { response, body: await response.text() };
    } catch (error) {
      const failure = classifyFetchError(error, options.timeoutMs, peer);
      if (failure === undefined) throw error;
      return failure;
    }
  };
  return async () => {
    if (tokenUrl === undefined) {
      const documentUrl = (client.endpoint as { discoveryUrl: string }).discoveryUrl;
      const answer = await get(documentUrl, {
        headers: { accept: "application/json", "user-agent": USER_AGENT },
      }, `the OpenID Connect discovery document ${documentUrl}`);
      if ("kind" in answer) return answer;
      const found = classifyDiscoveryAnswer(documentUrl, answer.response.status, answer.body);
      if (found.kind !== "endpoint") return found;
      tokenUrl = found.tokenUrl;
    }
    const request = tokenRequest(client);
    const answer = await get(tokenUrl, { method: "POST", ...request }, `the token endpoint ${tokenUrl}`);
    if ("kind" in answer) return answer;
    const retryAfterMs = parseRetryAfter(answer.response.headers.get("retry-after"), now());
    return classifyTokenAnswer(tokenUrl, answer.response.status, answer.body, retryAfterMs);
  };
}
