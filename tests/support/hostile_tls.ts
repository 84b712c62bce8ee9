/**
 * Hostile transport peers for the security tests: TLS servers whose certificates are wrong in one way each
 * (another host's name, the CA itself as the leaf, self-signed and trusted by no one), plain servers that
 * record every request, and a server whose 200 answer never ends. Each counts what it received and whether
 * credentials came with it, so a test can tell that eventsink refused before it sent anything.
 *
 * The certificates are made with the `openssl` command line, as in pki.ts; keys are EC P-256, PKCS#8 PEM.
 */
import { type CertPair, inTempDir, issue, makeCa, newKey, openssl } from "./pki.ts";

/** The files of the hostile PKI; `close()` removes them. */
export interface HostilePki extends AsyncDisposable {
  dir: string;
  /**
   * The CA to give eventsink (`--eventstore-ca`). Its certificate names 127.0.0.1 and localhost, so that
   * when it serves as a leaf ({@link caAsLeaf}) the only thing wrong is that it is a CA.
   */
  ca: string;
  /** Signed by `ca`, valid, but for `DNS:not-this-host.example` only. */
  wrongHost: CertPair;
  /** The CA's own certificate and key, used as the server's end-entity certificate. */
  caAsLeaf: CertPair;
  /** Self-signed (CA:FALSE) for 127.0.0.1 and localhost: signed by nothing anyone trusts. */
  selfSigned: CertPair;
  close(): Promise<void>;
}

/** The host name the wrong-host certificate names instead of 127.0.0.1. */
export const WRONG_HOST_NAME = "not-this-host.example";

/** Makes a fresh hostile PKI in a temporary directory. */
export function makeHostilePki(): Promise<HostilePki> {
  return inTempDir("eventsink-hostile-pki-", async (at) => {
    // The CA names 127.0.0.1 too, so that as a leaf the only thing wrong with it is that it is a CA.
    await makeCa(at("ca"), "eventsink hostile test CA", [
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ]);
    await issue(at("wrong-host"), at("ca"), WRONG_HOST_NAME, [
      `subjectAltName=DNS:${WRONG_HOST_NAME}`,
      "extendedKeyUsage=serverAuth",
    ]);
    await newKey(at("self-signed"));
    await openssl([
      ...["req", "-x509", "-new", "-key", at("self-signed.key"), "-out", at("self-signed.pem"), "-days", "2"],
      ...["-subj", "/CN=localhost", "-addext", "basicConstraints=critical,CA:FALSE"],
      ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "extendedKeyUsage=serverAuth"],
    ]);
    return {
      ca: at("ca.pem"),
      wrongHost: { cert: at("wrong-host.pem"), key: at("wrong-host.key") },
      caAsLeaf: { cert: at("ca.pem"), key: at("ca.key") },
      selfSigned: { cert: at("self-signed.pem"), key: at("self-signed.key") },
    };
  });
}

/** A request as a recording server saw it. */
export interface ReceivedRequest {
  method: string;
  /** Path and query. */
  path: string;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** The `Authorization` header, if one came. */
  authorization: string | undefined;
  body: string;
}

/** A running recording server. */
export interface RecordingServer extends AsyncDisposable {
  /** `https://127.0.0.1:<port>` with TLS, else `http://<hostname>:<port>`. */
  readonly url: string;
  readonly port: number;
  requests(): ReceivedRequest[];
  /**
   * Requests that carried credentials: an Authorization header, a `client_secret` form field, or (in a
   * header or the body) one of the `secrets` given to {@link startRecordingServer}.
   */
  credentialed(): ReceivedRequest[];
  /** The tokens the default answer issued. */
  issuedTokens(): string[];
  close(): Promise<void>;
}

/** Options of {@link startRecordingServer}. */
export interface RecordingOptions {
  /** Serve https with this certificate and key (PEM files). */
  tls?: CertPair;
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Values that count as credentials wherever they turn up in a request. */
  secrets?: string[];
  /** The answer; default {@link defaultAnswer}. */
  answer?: (request: ReceivedRequest) => Response | Promise<Response>;
}

/**
 * A token endpoint and EventStore in one: `POST …/token` gets a bearer token for an hour, a discovery
 * document path gets a document naming this server's `/token`, anything else 202.
 */
export function defaultAnswer(
  base: string,
  issued: string[] = [],
): (request: ReceivedRequest) => Response {
  return (request) => {
    if (request.method === "POST" && request.path.endsWith("/token")) {
      const token = `hostile-token-${crypto.randomUUID()}`;
      issued.push(token);
      return Response.json({ access_token: token, token_type: "Bearer", expires_in: 3600 });
    }
    if (request.path.includes("/.well-known/")) {
      return Response.json({ issuer: base, token_endpoint: `${base}/token` });
    }
    return new Response(null, { status: 202 });
  };
}

/** Starts a server that records every request (Deno.serve; https when `tls` is given). */
export async function startRecordingServer(options: RecordingOptions = {}): Promise<RecordingServer> {
  const seen: ReceivedRequest[] = [];
  const hostname = options.hostname ?? "127.0.0.1";
  const tls = options.tls
    ? { cert: await Deno.readTextFile(options.tls.cert), key: await Deno.readTextFile(options.tls.key) }
    : {};
  let answer = options.answer;
  const server = Deno.serve({ hostname, port: 0, onListen() {}, ...tls }, async (request) => {
    const url = new URL(request.url);
    const headers = Object.fromEntries(request.headers);
    const received: ReceivedRequest = {
      method: request.method,
      path: `${url.pathname}${url.search}`,
      headers,
      authorization: headers.authorization,
      body: await request.text().catch(() => ""),
    };
    seen.push(received);
    return await answer!(received);
  });
  const port = server.addr.port;
  const url = `${options.tls ? "https" : "http"}://${hostname}:${port}`;
  const issued: string[] = [];
  answer ??= defaultAnswer(url, issued);
  const secrets = (options.secrets ?? []).filter((secret) => secret.length > 0);
  const carriesCredentials = (request: ReceivedRequest) =>
    request.authorization !== undefined ||
    new URLSearchParams(request.body).has("client_secret") ||
    secrets.some((secret) =>
      request.body.includes(secret) || Object.values(request.headers).some((value) => value.includes(secret))
    );
  let closed: Promise<void> | undefined;
  const close = () => closed ??= server.shutdown();
  return {
    url,
    port,
    requests: () => [...seen],
    credentialed: () => seen.filter(carriesCredentials),
    issuedTokens: () => [...issued],
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A server answering every request 200 with a body that does not end (or ends only at `limitBytes`). */
export interface EndlessServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Requests received. */
  requests(): number;
  /** Body bytes handed to the connection so far, over all requests. */
  bytesSent(): number;
  /** Whether the client dropped a body before its end. */
  dropped(): boolean;
  close(): Promise<void>;
}

/** Options of {@link startEndlessServer}. */
export interface EndlessOptions {
  /** The start of the body, e.g. `{"access_token":"` (the rest is filler that keeps it a JSON string). */
  prefix: string;
  /** Where the body ends after all; default 1 GiB. */
  limitBytes?: number;
  /** Default 64 KiB. */
  chunkBytes?: number;
  /** Default application/json. */
  contentType?: string;
}

/** 1 MiB. */
export const MIB = 1024 * 1024;

/**
 * Starts the endless server. The body is pulled a chunk at a time as the connection takes it (chunked
 * encoding, no Content-Length), so that `bytesSent()` counts what the client read, give or take the
 * socket buffers.
 */
export function startEndlessServer(options: EndlessOptions): EndlessServer {
  const limit = options.limitBytes ?? 1024 * MIB;
  const chunkBytes = options.chunkBytes ?? 64 * 1024;
  const filler = new Uint8Array(chunkBytes).fill("a".charCodeAt(0));
  const prefix = new TextEncoder().encode(options.prefix);
  let requests = 0;
  let sent = 0;
  let dropped = false;
  const open = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const body = () => {
    let own = 0;
    let held: ReadableStreamDefaultController<Uint8Array> | undefined;
    return new ReadableStream<Uint8Array>({
      start(controller) {
        held = controller;
        open.add(controller);
      },
      pull(controller) {
        if (own >= limit) {
          open.delete(controller);
          controller.close();
          return;
        }
        const chunk = own === 0 ? prefix : filler.subarray(0, Math.min(chunkBytes, limit - own));
        own += chunk.length;
        sent += chunk.length;
        controller.enqueue(chunk);
      },
      cancel() {
        dropped = true;
        if (held) open.delete(held);
      },
    }, { highWaterMark: 0 });
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    requests++;
    await request.body?.cancel();
    return new Response(body(), {
      status: 200,
      headers: { "content-type": options.contentType ?? "application/json" },
    });
  });
  let closed: Promise<void> | undefined;
  // A body still being read would hold shutdown() for ever: end each one first.
  const close = () =>
    closed ??= (() => {
      for (const controller of open) controller.error(new Error("server closed"));
      open.clear();
      return server.shutdown();
    })();
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests: () => requests,
    bytesSent: () => sent,
    dropped: () => dropped,
    close,
    [Symbol.asyncDispose]: close,
  };
}
