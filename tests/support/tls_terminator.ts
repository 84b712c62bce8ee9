/**
 * HTTPS in front of a plain-HTTP stand-in, as a TLS-terminating ingress would put it: a node:tls server
 * with the test PKI's server certificate that relays each connection to the stand-in, optionally
 * requiring a client certificate signed by a given CA. (Deno.listenTls cannot ask for client certificates;
 * node:tls under Deno can.)
 */
import net from "node:net";
import tls from "node:tls";

/** A running TLS terminator. */
export interface TlsTerminator extends AsyncDisposable {
  /** `https://127.0.0.1:<port>`, to give eventsink as the EventStore URL. */
  readonly url: string;
  /** The subject CN of every client certificate presented, in order. */
  clientCertificates(): string[];
  /** Connections whose TLS handshake failed. */
  failedHandshakes(): number;
  close(): Promise<void>;
}

/** Options of {@link startTlsTerminator}: PEM file paths. */
export interface TerminatorOptions {
  cert: string;
  key: string;
  /** When given, a client certificate signed by this CA is required. */
  clientCa?: string;
}

/** Listens on a free port of 127.0.0.1 and relays to `target` ("http://127.0.0.1:<port>"). */
export async function startTlsTerminator(target: string, options: TerminatorOptions): Promise<TlsTerminator> {
  const upstream = new URL(target);
  const subjects: string[] = [];
  let failed = 0;
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  };
  const server = tls.createServer({
    cert: await Deno.readTextFile(options.cert),
    key: await Deno.readTextFile(options.key),
    ...(options.clientCa
      ? { ca: await Deno.readTextFile(options.clientCa), requestCert: true, rejectUnauthorized: true }
      : {}),
  }, (client) => {
    track(client);
    const subject = client.getPeerCertificate()?.subject?.CN;
    if (typeof subject === "string") subjects.push(subject);
    const relay = net.connect({ host: upstream.hostname, port: Number(upstream.port) });
    track(relay);
    client.pipe(relay).pipe(client);
    const end = () => {
      client.destroy();
      relay.destroy();
    };
    client.on("error", end);
    relay.on("error", end);
  });
  server.on("tlsClientError", () => failed++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
  return {
    url: `https://127.0.0.1:${port}`,
    clientCertificates: () => [...subjects],
    failedHandshakes: () => failed,
    close,
    [Symbol.asyncDispose]: close,
  };
}
