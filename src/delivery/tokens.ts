/**
 * Bearer tokens for the EventStore: a static token, or OAuth2 tokens (see oauth2.ts). Tokens are cached
 * until shortly before they expire, one request serves every delivery waiting for a token, and a token the
 * EventStore refuses (401) is replaced once before the 401 counts as a configuration fault.
 */
import type { EventStoreCredentials } from "../security/credentials.ts";
import type { Outcome } from "./outcome.ts";
import type { Secret } from "../security/secrets.ts";
import { abortable } from "../async.ts";
import type { Logger } from "../log.ts";
import { type FetchResult, oauth2TokenFetcher, type TokenFailure, type TokenFetchOptions } from "./oauth2.ts";

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
      return abortable(fetchShared(), signal);
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

/**
 * Gets the first OAuth2 token before consuming: refused credentials end eventsink at once (false); a token
 * endpoint that cannot be reached now is only a warning, as deliveries wait and retry for a token.
 */
export async function firstToken(tokens: TokenSource, log: Logger): Promise<boolean> {
  const result = await tokens.token(new AbortController().signal);
  if (result.kind === "config-fault") {
    log.error(`Cannot start: ${result.reason}`);
    return false;
  }
  if (result.kind === "retry") {
    log.warn("No EventStore token yet; deliveries wait for the token endpoint", { reason: result.reason });
  } else {
    log.info("Got an EventStore token");
  }
  return true;
}
