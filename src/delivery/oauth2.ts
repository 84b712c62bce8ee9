/**
 * OAuth2 client credentials (RFC 6749 §4.4): the token request, the token endpoint found directly or by
 * OpenID Connect discovery, and what an endpoint's answer means for the delivery waiting on it.
 */
import { isSecureOrLocal } from "../security/transport.ts";
import type { EventStoreCredentials } from "../security/credentials.ts";
import { parseRetryAfter } from "./backoff.ts";
import { classifyFetchError, isRetriableStatus, type Outcome, retryOutcome } from "./outcome.ts";
import { USER_AGENT } from "../version.ts";

/** Why there is no token: a failure outcome for the delivery that needed one. */
export type TokenFailure = Extract<Outcome, { kind: "retry" | "config-fault" }>;

/** A token as the token endpoint issued it. */
export interface IssuedToken {
  value: string;
  /** From `expires_in`; undefined when the endpoint did not say. */
  lifetimeMs: number | undefined;
}

/** What one token request came to. */
export type FetchResult = { kind: "token"; token: IssuedToken } | TokenFailure;

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
  if (isRetriableStatus(status)) return retryOutcome(status, `${who} answered ${status}`, retryAfterMs);
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
  if (isRetriableStatus(status)) return retryOutcome(status, `${who} answered ${status}`, undefined);
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
