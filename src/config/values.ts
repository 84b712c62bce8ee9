/**
 * The value parsers: each turns one option's text (or a few related options) into its typed value, and
 * adds a line to `errors` for whatever is wrong, naming the flag.
 */
import { isSecureOrLocal, printableUrl, webUrlProblem } from "../security/transport.ts";
import {
  type EventStoreAuth,
  type KafkaSasl,
  OAUTH_CLIENT_AUTHS,
  type OAuthClientAuth,
  SASL_MECHANISMS,
  type SaslMechanism,
  SECRETS,
} from "../security/credentials.ts";
import { CREDENTIALS_DIRECTORY, secretSource, type SecretSpec } from "../security/secrets.ts";
import type { TlsFiles } from "../security/tls_files.ts";
import type { ListenAddress } from "../operations/endpoints.ts";
import type { OptionName } from "./options.ts";

/** An option's value, trimmed; undefined when it is neither given nor defaulted, or empty. */
export type Optional = (name: OptionName) => string | undefined;
/** Reads an environment variable. */
export type Env = (name: string) => string | undefined;

/** A boolean from the environment: true, 1, yes, on; false, 0, no, off or empty; else undefined. */
export function parseBoolean(text: string): boolean | undefined {
  const normal = text.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(normal)) return true;
  if (["false", "0", "no", "off", ""].includes(normal)) return false;
  return undefined;
}

/** A name Kafka accepts as a topic. */
export function checkTopicName(flag: string, name: string, errors: string[]): void {
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(name)) {
    errors.push(
      `--${flag} "${name}" is not a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)`,
    );
  }
}

/** `host:port,…` (an IPv6 host in brackets). */
export function parseBrokers(text: string, errors: string[]): string[] {
  const brokers = text.split(",").map((b) => b.trim()).filter((b) => b !== "");
  if (brokers.length === 0) errors.push("--brokers must name at least one host:port");
  for (const broker of brokers) {
    const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(broker);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) {
      errors.push(`--brokers entry "${broker}" is not host:port (e.g. kafka1.example.org:9092)`);
    }
  }
  return brokers;
}

/** The EventStore base URL (required), without a trailing slash. */
export function parseEventStoreUrl(text: string, errors: string[]): string {
  if (text === "") {
    errors.push("--eventstore-url is required (or EVENTSINK_EVENTSTORE_URL / HOPS_EVENTSTORE_BASE_URL)");
    return "";
  }
  const problem = webUrlProblem(text);
  if (problem !== undefined) {
    errors.push(`--eventstore-url "${printableUrl(text)}" ${problem} (e.g. https://eventstore.example.org)`);
    return "";
  }
  const url = new URL(text);
  if (url.search !== "" || url.hash !== "") {
    errors.push("--eventstore-url must be a base URL without query or fragment");
  }
  return url.href.replace(/\/+$/, "");
}

/** Names a header may not take: eventsink sets these itself. */
const OWN_HEADERS = new Set([
  "accept",
  "authorization",
  "connection",
  "content-length",
  "content-type",
  "host",
  "transfer-encoding",
  "user-agent",
  "x-request-id",
]);

/** Parses `name=value,name=value` (values %-encoded where needed, as OTEL_EXPORTER_OTLP_HEADERS). */
export function parseHeaders(text: string, errors: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const at = pair.indexOf("=");
    const name = (at < 0 ? pair : pair.slice(0, at)).trim().toLowerCase();
    // The entry is not quoted: it may be a secret value given as "Name: value".
    if (at < 0) {
      errors.push("--eventstore-headers: an entry is not name=value (entries are comma-separated)");
      continue;
    }
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
      errors.push(`--eventstore-headers: "${name}" is not a valid header name`);
      continue;
    }
    if (OWN_HEADERS.has(name)) {
      errors.push(`--eventstore-headers: ${name} is set by eventsink itself`);
      continue;
    }
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(at + 1).trim());
    } catch {
      errors.push(`--eventstore-headers: the value of ${name} is not validly %-encoded`);
      continue;
    }
    if (!/^[\t\x20-\x7e]*$/.test(value)) {
      errors.push(`--eventstore-headers: the value of ${name} has characters a header cannot carry`);
      continue;
    }
    headers[name] = value;
  }
  return headers;
}

/** `host:port` (an IPv6 host in brackets, port 0 for a free one), or `off`: undefined. */
export function parseListen(text: string, errors: string[]): ListenAddress | undefined {
  if (text === "off") return undefined;
  const match = /^(\[[0-9a-fA-F:]+\]|[^:\s\[\]]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65535) {
    errors.push(`--http-listen must be host:port (e.g. 127.0.0.1:8095, [::1]:8095) or off; got "${text}"`);
    return undefined;
  }
  return { hostname: match[1]!.replace(/^\[(.*)\]$/, "$1"), port };
}

/** A peer's `--…-ca`, `--…-cert` and `--…-key`; the certificate and its key go together. */
export function tlsFiles(peer: "kafka" | "eventstore", optional: Optional, errors: string[]): TlsFiles {
  const files: TlsFiles = {
    ca: optional(`${peer}-ca`),
    cert: optional(`${peer}-cert`),
    key: optional(`${peer}-key`),
  };
  if ((files.cert === undefined) !== (files.key === undefined)) {
    errors.push(`--${peer}-cert and --${peer}-key go together: give both or neither`);
  }
  return files;
}

/** None, a static token or OAuth2 client credentials, from the `--oauth-*` and token options. */
export function eventstoreAuth(
  optional: Optional,
  env: Env,
  errors: string[],
): EventStoreAuth {
  const tokenUrl = optional("oauth-token-url");
  const discoveryUrl = optional("oauth-discovery-url");
  const explicitToken = optional("eventstore-token-file") !== undefined ||
    SECRETS.eventstoreToken.env.some((name) => env(name) !== undefined);
  if (tokenUrl === undefined && discoveryUrl === undefined) {
    const stray = (["oauth-client-id", "oauth-scope", "oauth-client-secret-file"] as const)
      .filter((name) => optional(name)).map((name) => `--${name}`);
    stray.push(...SECRETS.oauthClientSecret.env.filter((name) => env(name) !== undefined));
    if (stray.length > 0) {
      errors.push(`${stray.join(", ")} given without --oauth-token-url or --oauth-discovery-url`);
    }
    const token = secretSource(SECRETS.eventstoreToken, optional("eventstore-token-file"), env);
    return token === undefined ? { kind: "none" } : { kind: "token", token };
  }
  if (tokenUrl !== undefined && discoveryUrl !== undefined) {
    errors.push("give --oauth-token-url or --oauth-discovery-url, not both");
  }
  if (explicitToken) errors.push("give a static EventStore token or OAuth2 client credentials, not both");
  const clientId = optional("oauth-client-id") ?? "";
  if (clientId === "") {
    errors.push("OAuth2 needs --oauth-client-id (or EVENTSINK_OAUTH_CLIENT_ID / AZURE_APP_CLIENT_ID)");
  }
  const clientSecret = secretSource(SECRETS.oauthClientSecret, optional("oauth-client-secret-file"), env);
  if (clientSecret === undefined) errors.push(`OAuth2 needs ${missingSecret(SECRETS.oauthClientSecret)}`);
  const clientAuth = optional("oauth-client-auth") as OAuthClientAuth;
  if (!OAUTH_CLIENT_AUTHS.includes(clientAuth)) {
    errors.push(`--oauth-client-auth must be one of ${OAUTH_CLIENT_AUTHS.join(", ")}; got "${clientAuth}"`);
  }
  const endpoint = tokenUrl !== undefined
    ? { tokenUrl: endpointUrl("oauth-token-url", tokenUrl, errors) }
    : { discoveryUrl: endpointUrl("oauth-discovery-url", discoveryUrl!, errors) };
  return {
    kind: "oauth2",
    endpoint,
    clientId,
    clientSecret: clientSecret!,
    scope: optional("oauth-scope"),
    clientAuth,
  };
}

/** SASL to Kafka when `--kafka-sasl-mechanism` is given (TLS is checked by the caller). */
export function kafkaSasl(
  optional: Optional,
  env: Env,
  errors: string[],
): KafkaSasl | undefined {
  const mechanism = optional("kafka-sasl-mechanism") as SaslMechanism | undefined;
  if (mechanism === undefined) {
    if (optional("kafka-sasl-username")) {
      errors.push("--kafka-sasl-username given without --kafka-sasl-mechanism");
    }
    return undefined;
  }
  if (!SASL_MECHANISMS.includes(mechanism)) {
    errors.push(`--kafka-sasl-mechanism must be one of ${SASL_MECHANISMS.join(", ")}; got "${mechanism}"`);
  }
  const username = optional("kafka-sasl-username") ?? "";
  if (username === "") errors.push("--kafka-sasl-mechanism needs --kafka-sasl-username");
  const password = secretSource(SECRETS.kafkaSaslPassword, optional("kafka-sasl-password-file"), env);
  if (password === undefined) {
    errors.push(`--kafka-sasl-mechanism needs ${missingSecret(SECRETS.kafkaSaslPassword)}`);
  }
  return { mechanism, username, password: password! };
}

function missingSecret(spec: SecretSpec): string {
  return `${spec.what}: set ${spec.env.join(" or ")}, give --${spec.fileOption}, or load the systemd ` +
    `credential ${spec.credential} ($${CREDENTIALS_DIRECTORY} is not set)`;
}

/** An OAuth2 URL: https, or http to localhost only. */
function endpointUrl(option: OptionName, text: string, errors: string[]): string {
  const problem = webUrlProblem(text);
  if (problem !== undefined) {
    errors.push(`--${option} "${printableUrl(text)}" ${problem}`);
    return text;
  }
  if (!isSecureOrLocal(text)) {
    errors.push(`--${option} must be https (http only to localhost): the client secret goes there`);
  }
  return new URL(text).href;
}
