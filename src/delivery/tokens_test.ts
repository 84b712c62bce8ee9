import assert from "node:assert/strict";
import {
  createTokenCache,
  FORCED_REFRESH_INTERVAL_MS,
  refreshTime,
  sendWithToken,
  staticTokenSource,
  type TokenSource,
} from "./tokens.ts";
import type { FetchResult } from "./oauth2.ts";
import type { Outcome } from "./outcome.ts";
import { Secret } from "../security/secrets.ts";

const never = new AbortController().signal;

/** A token cache on a fake clock, over a fake endpoint that issues token-1, token-2, … */
function cacheHarness(lifetimeMs: number | undefined = 3_600_000) {
  let clock = 1_000_000;
  const answers: FetchResult[] = [];
  let issued = 0;
  let release: (() => void) | undefined;
  let gate: Promise<void> | undefined;
  const seen: string[] = [];
  const tokens = createTokenCache(async () => {
    if (gate) await gate;
    const scripted = answers.shift();
    if (scripted) return scripted;
    return { kind: "token", token: { value: `token-${++issued}`, lifetimeMs } };
  }, { now: () => clock, onToken: (value) => seen.push(value) });
  return {
    tokens,
    answers,
    seen,
    fetches: () => issued,
    advance: (ms: number) => (clock += ms),
    /** Holds the endpoint's answers until the returned function is called. */
    hold: () => {
      gate = new Promise((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release!();
      };
    },
  };
}

async function tokenOf(tokens: TokenSource): Promise<string> {
  const result = await tokens.token(never);
  assert.equal(result.kind, "token", JSON.stringify(result));
  return (result as { value: string }).value;
}

Deno.test("token cache: one token serves every request until shortly before it expires", async () => {
  const h = cacheHarness(3_600_000);
  assert.equal(await tokenOf(h.tokens), "token-1");
  h.advance(3_600_000 - 60_001);
  assert.equal(await tokenOf(h.tokens), "token-1", "still a minute and a little left");
  h.advance(2);
  assert.equal(await tokenOf(h.tokens), "token-2", "replaced a minute before expiry");
  assert.equal(h.fetches(), 2);
  assert.deepEqual(h.seen, ["token-1", "token-2"]);
});

Deno.test("token cache: the refresh margin is a tenth of a short lifetime; no expires_in means 5 minutes", () => {
  assert.equal(refreshTime(0, 3_600_000), 3_540_000);
  assert.equal(refreshTime(0, 5_000), 4_500);
  assert.equal(refreshTime(100, undefined), 100 + 300_000 - 30_000);
});

Deno.test("token cache: concurrent callers share one token request", async () => {
  const h = cacheHarness();
  const release = h.hold();
  const waiting = Array.from({ length: 20 }, () => tokenOf(h.tokens));
  release();
  assert.deepEqual(new Set(await Promise.all(waiting)), new Set(["token-1"]));
  assert.equal(h.fetches(), 1);
});

Deno.test("token cache: a failure is shared by the waiting callers but not cached", async () => {
  const h = cacheHarness();
  h.answers.push({ kind: "retry", status: 503, reason: "The token endpoint answered 503" });
  const [a, b] = await Promise.all([h.tokens.token(never), h.tokens.token(never)]);
  assert.equal(a.kind, "retry");
  assert.equal(b.kind, "retry");
  assert.equal(await tokenOf(h.tokens), "token-1", "the next caller asks again");
});

Deno.test("token cache: a caller that stops waiting does not cancel the request for the others", async () => {
  const h = cacheHarness();
  const release = h.hold();
  const stopping = new AbortController();
  const leaving = h.tokens.token(stopping.signal);
  const staying = tokenOf(h.tokens);
  stopping.abort(new Error("revoked"));
  await assert.rejects(leaving, /revoked/);
  release();
  assert.equal(await staying, "token-1");
});

Deno.test("token cache: a 401 replaces the token once; another 401 soon after does not", async () => {
  const h = cacheHarness();
  assert.equal(await tokenOf(h.tokens), "token-1");
  assert.equal(h.tokens.refresh("token-1"), true);
  assert.equal(h.tokens.refresh("token-1"), true, "a second caller with the old token: a new one is coming");
  assert.equal(await tokenOf(h.tokens), "token-2");
  assert.equal(h.tokens.refresh("token-2"), false, "refused again at once: the token is not the problem");
  h.advance(FORCED_REFRESH_INTERVAL_MS);
  assert.equal(h.tokens.refresh("token-2"), true);
  assert.equal(await tokenOf(h.tokens), "token-3");
  assert.equal(h.fetches(), 3);
});

const ACCEPTED: Outcome = { kind: "delivered", status: 202 };
const REFUSED: Outcome = { kind: "config-fault", status: 401, reason: "EventStore answered 401" };

Deno.test("send with token: a 401 is retried once with a new token", async () => {
  const h = cacheHarness();
  const sent: string[] = [];
  const outcome = await sendWithToken(h.tokens, (token) => {
    sent.push(token);
    return Promise.resolve(token === "token-1" ? REFUSED : ACCEPTED);
  }, never);
  assert.deepEqual(outcome, ACCEPTED);
  assert.deepEqual(sent, ["token-1", "token-2"]);
});

Deno.test("send with token: a second 401 stays a configuration fault", async () => {
  const h = cacheHarness();
  const sent: string[] = [];
  const send = (token: string) => {
    sent.push(token);
    return Promise.resolve(REFUSED);
  };
  assert.deepEqual(await sendWithToken(h.tokens, send, never), REFUSED);
  assert.deepEqual(await sendWithToken(h.tokens, send, never), REFUSED);
  assert.deepEqual(sent, ["token-1", "token-2", "token-2"], "no new token for every retry");
});

Deno.test("send with token: a static token is sent as is and never refreshed", async () => {
  const sent: string[] = [];
  const outcome = await sendWithToken(staticTokenSource(new Secret("static-token-1")), (token) => {
    sent.push(token);
    return Promise.resolve(REFUSED);
  }, never);
  assert.deepEqual(outcome, REFUSED);
  assert.deepEqual(sent, ["static-token-1"]);
});

Deno.test("send with token: no token, no request", async () => {
  const h = cacheHarness();
  h.answers.push({ kind: "config-fault", status: 401, reason: "invalid_client" });
  let sent = 0;
  const outcome = await sendWithToken(h.tokens, () => {
    sent++;
    return Promise.resolve(ACCEPTED);
  }, never);
  assert.equal(outcome.kind, "config-fault");
  assert.equal(sent, 0);
});
