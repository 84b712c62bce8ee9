/**
 * A real OAuth2 / OpenID Connect server for the auth tests: navikt's mock-oauth2-server from Maven
 * Central (the server the original platform tested with), run with `java -cp`. It issues RS256 JWTs and
 * serves discovery documents and JWKS; the stand-in EventStore verifies its tokens with `jose`.
 *
 * mock-oauth2-server issues a token to any client with any secret, so a small gate in front of it plays
 * the authorization server's client authentication (RFC 6749 §2.3.1, both client_secret_basic and
 * client_secret_post): registered clients get through to the real server, others get 401 invalid_client.
 * The gate also counts token requests, records the tokens issued, and can be taken down (503) for outage
 * tests. Discovery documents name the gate's endpoints (the server honours X-Forwarded-Port).
 *
 * Issuers: "default" issues tokens that live an hour, "short" ones that live {@link SHORT_TOKEN_SECONDS}.
 * Both put `aud: api://eventstore` in a token asked for with scope `api://eventstore/.default`, as Azure AD does.
 */
import { createRemoteJWKSet, jwtVerify } from "jose";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { registerSecrets } from "./secret_scan.ts";
import { classpath, ensureMavenJars, logTail, spawnWatched, stopWatched, TOOL_JVM_ARGS } from "./jvm.ts";

const POM = fileURLToPath(new URL("./oauth/pom.xml", import.meta.url));
const CACHE_DIR = fileURLToPath(new URL("../../.cache/mock-oauth2-server/", import.meta.url));
const MAIN_CLASS = "no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt";
const START_TIMEOUT_MS = 60_000;

/** The scope eventsink asks for, and the audience the EventStore wants in a token. */
export const EVENTSTORE_SCOPE = "api://eventstore/.default";
export const EVENTSTORE_AUDIENCE = "api://eventstore";
/** Lifetime of tokens from the "short" issuer. */
export const SHORT_TOKEN_SECONDS = 5; // eventsink believes no lifetime under 5 s

/** Issuers the server is configured with. */
export type Issuer = "default" | "short";

/** A token request as the gate saw it. */
export interface TokenRequestRecord {
  issuer: string;
  clientId: string | undefined;
  /** How the client authenticated. */
  clientAuth: "client_secret_basic" | "client_secret_post" | "none";
  status: number;
}

/** A running mock-oauth2-server behind its gate. */
export interface OAuthServer extends AsyncDisposable {
  /** The issuer URL as tokens carry it (the gate's). */
  issuerUrl(issuer: Issuer): string;
  /** The OpenID Connect discovery document, as AZURE_APP_WELL_KNOWN_URL would name it. */
  discoveryUrl(issuer: Issuer): string;
  tokenUrl(issuer: Issuer): string;
  /** Registers a client, or (secret null) removes it: its next token request is refused. */
  setClient(clientId: string, secret: string | null): void;
  /** While on, every request to the gate is answered 503. */
  outage(on: boolean): void;
  tokenRequests(): TokenRequestRecord[];
  /** Every access token issued so far. */
  issuedTokens(): string[];
  /** A stand-in `authorize` hook: a bearer JWT signed by `issuer` (its JWKS), for the EventStore audience. */
  verifier(issuer: Issuer): (authorization: string | null) => Promise<boolean>;
  close(): Promise<void>;
}

/** Fetches the jars (once), starts the server and its gate; resolves once discovery answers. */
export async function startOAuthServer(clients: Record<string, string>): Promise<OAuthServer> {
  const libs = await ensureMavenJars({ pom: POM, dir: CACHE_DIR, what: "mock-oauth2-server" });
  const dir = await Deno.makeTempDir({ prefix: "eventsink-oauth-" });
  const logFile = join(dir, "mock-oauth2-server.log");
  const port = freePort();
  const server = spawnWatched(["java", ...TOOL_JVM_ARGS, "-cp", classpath(libs), MAIN_CLASS], {
    logFile,
    removeDir: dir,
    env: {
      SERVER_HOSTNAME: "127.0.0.1",
      SERVER_PORT: String(port),
      JSON_CONFIG: JSON.stringify(serverConfig()),
    },
  });
  const upstream = `http://127.0.0.1:${port}`;
  try {
    await waitUntilServing(`${upstream}/default/.well-known/openid-configuration`, server.child);
  } catch (error) {
    const tail = await logTail(logFile, 40, "(no log)");
    await stopWatched(server, "SIGKILL", 5_000);
    await Deno.remove(dir, { recursive: true });
    throw new Error(`mock-oauth2-server did not come up: ${(error as Error).message}\n${tail}`);
  }
  const { gate, server: gateServer } = openGate(upstream, new Map(Object.entries(clients)));
  const base = `http://127.0.0.1:${gate.port}`;
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      await gateServer.shutdown();
      await stopWatched(server, "SIGTERM", 10_000);
      await Deno.remove(dir, { recursive: true });
    })();
  return {
    issuerUrl: (issuer) => `${base}/${issuer}`,
    discoveryUrl: (issuer) => `${base}/${issuer}/.well-known/openid-configuration`,
    tokenUrl: (issuer) => `${base}/${issuer}/token`,
    setClient: (clientId, secret) => {
      if (secret === null) gate.clients.delete(clientId);
      else gate.clients.set(clientId, secret);
    },
    outage: (on) => (gate.down = on),
    tokenRequests: () => [...gate.requests],
    issuedTokens: () => [...gate.tokens],
    verifier(issuer) {
      // The keys come from the server itself; the issuer claim names the gate, as the server was told.
      const keys = createRemoteJWKSet(new URL(`${upstream}/${issuer}/jwks`));
      return async (authorization) => {
        const token = /^Bearer (\S+)$/.exec(authorization ?? "")?.[1];
        if (token === undefined) return false;
        try {
          await jwtVerify(token, keys, { issuer: `${base}/${issuer}`, audience: EVENTSTORE_AUDIENCE });
          return true;
        } catch {
          return false;
        }
      };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function serverConfig() {
  const mapping = {
    requestParam: "scope",
    match: EVENTSTORE_SCOPE,
    claims: {
      sub: "${clientId}",
      aud: [EVENTSTORE_AUDIENCE],
      azp: "${clientId}",
      roles: ["eventstore.write"],
    },
  };
  return {
    tokenCallbacks: [
      { issuerId: "default", tokenExpiry: 3600, requestMappings: [mapping] },
      { issuerId: "short", tokenExpiry: SHORT_TOKEN_SECONDS, requestMappings: [mapping] },
    ],
  };
}

interface Gate {
  /** The gate's own port, which the server is told to name in its URLs. */
  port: number;
  clients: Map<string, string>;
  requests: TokenRequestRecord[];
  tokens: string[];
  down: boolean;
}

function openGate(upstream: string, clients: Map<string, string>) {
  const gate: Gate = { port: 0, clients, requests: [], tokens: [], down: false };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const body = await request.text();
    if (gate.down) return new Response("the authorization server is down for a test\n", { status: 503 });
    const url = new URL(request.url);
    const tokenPath = /^\/([^/]+)\/token$/.exec(url.pathname);
    if (request.method === "POST" && tokenPath) {
      const client = clientAuthentication(request.headers.get("authorization"), new URLSearchParams(body));
      const record: TokenRequestRecord = {
        issuer: tokenPath[1]!,
        clientId: client.clientId,
        clientAuth: client.method,
        status: 0,
      };
      gate.requests.push(record);
      if (client.clientId === undefined || gate.clients.get(client.clientId) !== client.secret) {
        record.status = 401;
        return Response.json(
          { error: "invalid_client", error_description: "client authentication failed" },
          { status: 401, headers: { "www-authenticate": 'Basic realm="token"' } },
        );
      }
      const answer = await forward(upstream, gate, request, url, body);
      record.status = answer.status;
      const token = answer.ok ? (await answer.clone().json()).access_token : undefined;
      if (typeof token === "string") {
        gate.tokens.push(token);
        registerSecrets(token); // for the run's secret scan
      }
      return answer;
    }
    return await forward(upstream, gate, request, url, body);
  });
  gate.port = server.addr.port;
  return { gate, server };
}

/** Passes a request on to the server, telling it the gate's port so that it names the gate in URLs. */
async function forward(
  upstream: string,
  gate: Gate,
  request: Request,
  url: URL,
  body: string,
): Promise<Response> {
  const headers = new Headers(request.headers);
  headers.delete("host");
  headers.set("x-forwarded-port", String(gate.port));
  const answer = await fetch(`${upstream}${url.pathname}${url.search}`, {
    method: request.method,
    headers,
    body: request.method === "GET" || request.method === "HEAD" ? undefined : body,
  });
  return new Response(await answer.arrayBuffer(), {
    status: answer.status,
    headers: { "content-type": answer.headers.get("content-type") ?? "application/json" },
  });
}

function clientAuthentication(
  authorization: string | null,
  form: URLSearchParams,
): { method: TokenRequestRecord["clientAuth"]; clientId?: string; secret?: string } {
  const basic = /^Basic (\S+)$/i.exec(authorization ?? "")?.[1];
  if (basic !== undefined) {
    const [id = "", secret = ""] = atob(basic).split(":");
    const decode = (text: string) => decodeURIComponent(text.replaceAll("+", " "));
    return { method: "client_secret_basic", clientId: decode(id), secret: decode(secret) };
  }
  const clientId = form.get("client_id") ?? undefined;
  const secret = form.get("client_secret") ?? undefined;
  return secret === undefined
    ? { method: "none", clientId }
    : { method: "client_secret_post", clientId, secret };
}

async function waitUntilServing(url: string, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) throw new Error("the server process exited");
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer within ${START_TIMEOUT_MS / 1000} s`);
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}
