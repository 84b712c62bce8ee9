/**
 * Turns the terse TLS failures of Deno's fetch (rustls: "invalid peer certificate: UnknownIssuer") and of
 * node:tls under KafkaJS ("self-signed certificate in certificate chain") into what to check.
 */

/** The options a TLS failure points at. */
export interface TlsOptions {
  /** The CA option, e.g. "--kafka-ca". */
  ca: string;
  /** The client certificate option, e.g. "--kafka-cert". */
  cert: string;
}

const EXPLANATIONS: ReadonlyArray<[RegExp, (options: TlsOptions) => string]> = [
  [
    /UnknownIssuer|self[- ]signed certificate|unable to (get local issuer|verify the first) certificate/i,
    (o) => `the server's certificate is not signed by a CA eventsink trusts (check ${o.ca})`,
  ],
  [
    /NotValidForName|not valid for name|does not match certificate|altnames/i,
    () => "the server's certificate does not name the host eventsink connected to",
  ],
  [
    /CaUsedAsEndEntity|unsuitable certificate purpose|invalid CA certificate/i,
    () => "the server presented a CA certificate as its own; it needs a server certificate signed by a CA",
  ],
  [
    /\bExpired\b|certificate has expired|NotValidYet|not yet valid/i,
    () => "the server's certificate is expired or not yet valid (or this machine's clock is wrong)",
  ],
  [
    // rustls reading an answer that is no TLS record: typically an HTTP server's "400 Bad Request".
    /InvalidContentType/,
    () =>
      "the server on that port speaks plain HTTP, not TLS: use https only if the server does TLS " +
      "(check the URL's scheme and port)",
  ],
  [
    /CertificateRequired|BadCertificate|UnknownCA|CertificateUnknown|alert.*certificate/i,
    (o) => `the server refused eventsink's client certificate, or wanted one and got none (check ${o.cert})`,
  ],
];

/**
 * "TLS: <what to check> (<the original detail>)", or undefined when `message` is no TLS failure eventsink
 * knows (a certificate refused, or a server that does not speak TLS).
 */
export function explainTlsFailure(message: string, options: TlsOptions): string | undefined {
  const found = EXPLANATIONS.find(([pattern]) => pattern.test(message));
  return found && `TLS: ${found[1](options)} (${message})`;
}

/** An error's message and those of its causes, joined: fetch puts the TLS detail in `cause`. */
export function errorChainText(error: unknown): string {
  const parts: string[] = [];
  for (let at: unknown = error; at instanceof Error && parts.length < 5; at = at.cause) {
    // KafkaJS wraps an error in one with the same message: said once.
    if (!parts.at(-1)?.endsWith(at.message)) parts.push(at.message);
  }
  return parts.join(": ");
}
