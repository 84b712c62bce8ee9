/**
 * OAuth2 client credentials (RFC 6749 §4.4): the token request, the token endpoint found directly or by
 * OpenID Connect discovery, and what an endpoint's answer means for the delivery waiting on it.
 */
import { isSecureOrLocal, printableUrl, webUrlProblem } from "../security/transport.ts";
import { readBodyStart } from "./sender.ts";
import { parseJsonObject } from "./json.ts";
import { basicCredentials, type EventStoreCredentials } from "../security/credentials.ts";
import { parseRetryAfter } from "./backoff.ts";
import { capitalise, classifyFetchError, isRetriableStatus, type Outcome, retryOutcome } from "./outcome.ts";
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
    headers.authorization = `Basic ${basicCredentials(client.clientId, client.clientSecret.reveal())}`;
  } else {
    form.set("client_id", client.clientId);
    form.set("client_secret", client.clientSecret.reveal());
  }
  return { headers, body: form.toString() };
}

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
    return { kind: "token", token: { value, lifetimeMs: tokenLifetimeMs(json?.expires_in) } };
  }
  if (isRetriableStatus(status)) return retryOutcome(status, `${who} answered ${status}`, retryAfterMs);
  const error = typeof json?.error === "string" ? json.error : undefined;
  const description = typeof json?.error_description === "string" ? `: ${json.error_description}` : "";
  const meaning = error === undefined ? undefined : CLIENT_ERRORS[error];
  const reason = meaning !== undefined
    ? `${who} ${meaning} (${status} ${error}${description})`
    : `${who} answered ${status}${error === undefined ? "" : ` ${error}${description}`}`;
  return { kind: "config-fault", status, reason };
}

/** Shortest token lifetime eventsink believes: an `expires_in` of 0.001 must not mean a token request per POST. */
export const MIN_TOKEN_LIFETIME_MS = 5_000;
/** Longest: a token is never kept for more than a day, whatever the endpoint says. */
export const MAX_TOKEN_LIFETIME_MS = 24 * 3_600_000;

/**
 * A token's lifetime from `expires_in` (seconds), clamped to 5 s … a day; undefined when the endpoint
 * gave none (or no number), so that the default applies. Pure.
 */
export function tokenLifetimeMs(expiresIn: unknown): number | undefined {
  const seconds = typeof expiresIn === "string" && expiresIn.trim() !== "" ? Number(expiresIn) : expiresIn;
  if (typeof seconds !== "number" || Number.isNaN(seconds)) return undefined;
  return Math.min(MAX_TOKEN_LIFETIME_MS, Math.max(MIN_TOKEN_LIFETIME_MS, seconds * 1_000));
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
  if (typeof endpoint !== "string") {
    return {
      kind: "config-fault",
      status,
      reason: `${who} names no token_endpoint (check --oauth-discovery-url)`,
    };
  }
  const problem = webUrlProblem(endpoint) ??
    (isSecureOrLocal(endpoint) ? undefined : "is not https (http only to localhost)");
  if (problem !== undefined) {
    return {
      kind: "config-fault",
      status,
      reason: `${who} names a token endpoint that ${problem}: ${printableUrl(endpoint)}`,
    };
  }
  return { kind: "endpoint", tokenUrl: new URL(endpoint).href };
}

/** Longest token or discovery answer read: both are a few KB; a peer sending without end is cut here. */
const MAX_BODY_BYTES = 1024 * 1024;

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
      const body = await readBodyStart(response, MAX_BODY_BYTES);
      if (!body.complete) {
        return {
          kind: "config-fault" as const,
          reason: `${
            capitalise(peer)
          } answered with more than 1 MiB; its answers are a few KB (check the URL)`,
        };
      }
      return { response, body: body.text };
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
