import { parseArgs } from "node:util";
import type { RetryPolicy } from "../delivery/backoff.ts";
import { isSecureOrLocal } from "../security/transport.ts";
import { REJECTED_POLICIES, type RejectedConfig, type RejectedPolicy } from "../settle/policy.ts";
import { type Ordering, ORDERINGS } from "../sink/ordering.ts";
import { formatDuration, parseDuration } from "../duration.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../log.ts";
import {
  CREDENTIALS_DIRECTORY,
  describeSecretSource,
  REDACTED,
  type SecretSource,
  secretSource,
  type SecretSpec,
} from "../security/secrets.ts";
import type { TlsFiles } from "../security/tls_files.ts";
import { parseFromOffsets, parseTimestamp, type StartSpec } from "../replay/start_position.ts";

/** How eventsink authenticates its client to the OAuth2 token endpoint (RFC 6749 §2.3.1). */
export type OAuthClientAuth = "client_secret_post" | "client_secret_basic";
const OAUTH_CLIENT_AUTHS: readonly OAuthClientAuth[] = ["client_secret_post", "client_secret_basic"];

/** OAuth2 client credentials for the EventStore. */
export interface OAuth2Settings {
  /** The token endpoint, or the OpenID Connect discovery document that names it. */
  endpoint: { tokenUrl: string } | { discoveryUrl: string };
  clientId: string;
  clientSecret: SecretSource;
  scope: string | undefined;
  clientAuth: OAuthClientAuth;
}

/** The credentials eventsink shows the EventStore. */
export type EventStoreAuth =
  | { kind: "none" }
  /** A static bearer token (a systemd credential source may turn out not to exist: then none). */
  | { kind: "token"; token: SecretSource }
  | ({ kind: "oauth2" } & OAuth2Settings);

/** SASL mechanisms eventsink speaks to Kafka, always over TLS. */
export type SaslMechanism = "plain" | "scram-sha-256" | "scram-sha-512";
const SASL_MECHANISMS: readonly SaslMechanism[] = ["plain", "scram-sha-256", "scram-sha-512"];

/** SASL authentication to Kafka. */
export interface KafkaSasl {
  mechanism: SaslMechanism;
  username: string;
  password: SecretSource;
}

/** Where the HTTP endpoint listens (see --http-listen). */
export interface ListenAddress {
  hostname: string;
  port: number;
}

/** `host:port`, with an IPv6 address in brackets. */
export function formatAddress(address: ListenAddress): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}

/** A run by hand: where it starts, whether it ends by itself, what it reports (see run_plan.ts). */
export interface ReplayOptions {
  /** Where a replay starts (any `--from-*`); undefined: the group's committed offsets, as the service. */
  from: StartSpec | undefined;
  untilEnd: boolean;
  keepGroup: boolean;
  dryRun: boolean;
  /** No progress display. */
  quiet: boolean;
  /** How often a progress line is logged when stderr is not a terminal. */
  progressIntervalMs: number;
}

/** Everything eventsink needs to run, validated. */
export interface Config {
  brokers: string[];
  topic: string;
  group: string;
  clientId: string;
  /** Base URL of the EventStore, without a trailing slash. */
  eventstoreUrl: string;
  fromBeginning: boolean;
  rejected: RejectedConfig;
  retry: RetryPolicy;
  requestTimeoutMs: number;
  ordering: Ordering;
  maxInFlight: number;
  /** Speak HTTP/2 to the EventStore instead of HTTP/1.1. */
  http2: boolean;
  shutdownGraceMs: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  eventstoreAuth: EventStoreAuth;
  /** Extra request headers for the EventStore, names in lower case. */
  eventstoreHeaders: Record<string, string>;
  /** CA bundle and client certificate for the EventStore (and the token endpoint). */
  eventstoreTls: TlsFiles;
  /** TLS to Kafka; undefined for plaintext. */
  kafkaTls: TlsFiles | undefined;
  kafkaSasl: KafkaSasl | undefined;
  /** Where /healthz, /readyz and /metrics are served; undefined: not at all. */
  httpListen: ListenAddress | undefined;
  replay: ReplayOptions;
  /** Records per second at most, over all partitions; undefined: no limit. */
  maxRate: number | undefined;
}

/** The outcome of reading the command line and environment. */
export type ParsedCommand =
  | { kind: "run"; config: Config }
  /** `eventsink check`: test both ends with this config, report, exit. */
  | { kind: "check"; config: Config }
  | { kind: "help"; text: string }
  | { kind: "version" }
  | { kind: "usage-error"; message: string };

interface OptionSpec {
  flag: string;
  /** Environment variables, ours first, then the original service's names (aliases). */
  env: string[];
  boolean?: true;
  default?: string;
  value?: string;
  help: string;
  /** Set on a `--…-file` option: the secret it names a file for, which may also come from elsewhere. */
  secret?: SecretSpec;
}

// Secrets are never flag values (`ps` and shell history would show them): each comes from the environment,
// from the file its --…-file option names, or from the systemd credential of its name.
export const SECRETS = {
  oauthClientSecret: {
    what: "the OAuth2 client secret",
    env: ["EVENTSINK_OAUTH_CLIENT_SECRET", "AZURE_APP_CLIENT_SECRET"],
    fileOption: "oauth-client-secret-file",
    credential: "oauth-client-secret",
  },
  eventstoreToken: {
    what: "the EventStore bearer token",
    env: ["EVENTSINK_EVENTSTORE_TOKEN"],
    fileOption: "eventstore-token-file",
    credential: "eventstore-token",
  },
  kafkaSaslPassword: {
    what: "the Kafka SASL password",
    env: ["EVENTSINK_KAFKA_SASL_PASSWORD"],
    fileOption: "kafka-sasl-password-file",
    credential: "kafka-sasl-password",
  },
} as const satisfies Record<string, SecretSpec>;

// Each option once: flag, environment names, default and help. `--help` is generated from this table.
const OPTIONS = [
  {
    flag: "brokers",
    env: ["EVENTSINK_BROKERS", "KAFKA_BROKERS"],
    default: "localhost:9092",
    value: "host:port,…",
    help: "Kafka bootstrap brokers, comma-separated.",
  },
  {
    flag: "topic",
    env: ["EVENTSINK_TOPIC", "KAFKA_TOPIC"],
    default: "helseopplysninger.rapid",
    value: "name",
    help: "Topic to consume FHIR messages from.",
  },
  {
    flag: "group",
    env: ["EVENTSINK_GROUP"],
    default: "hops-eventsink-group",
    value: "id",
    help: "Consumer group; offsets are committed here.",
  },
  {
    flag: "client-id",
    env: ["EVENTSINK_CLIENT_ID"],
    default: "hops-eventsink",
    value: "id",
    help: "Kafka client id, as shown in broker logs and quotas.",
  },
  {
    flag: "eventstore-url",
    env: ["EVENTSINK_EVENTSTORE_URL", "HOPS_EVENTSTORE_BASE_URL"],
    value: "url",
    help: "EventStore base URL (required); messages go to {url}/fhir/4.0/$process-message.",
  },
  {
    flag: "from-beginning",
    env: ["EVENTSINK_FROM_BEGINNING"],
    boolean: true,
    help: "Replay the whole topic, in a consumer group of its own named <group>.replay.<time> (removed at " +
      "the end unless --keep-group); the service's group is not touched.",
  },
  {
    flag: "from-timestamp",
    env: ["EVENTSINK_FROM_TIMESTAMP"],
    value: "time",
    help: "Replay from the first record of each partition written at or after this ISO 8601 time (e.g. " +
      "2026-11-28T10:15:00Z; a date alone is midnight UTC), in a group of its own like --from-beginning.",
  },
  {
    flag: "from-offsets",
    env: ["EVENTSINK_FROM_OFFSETS"],
    value: "partition=offset,…",
    help: "Replay the listed partitions from the given offsets (e.g. 0=120,1=55; unlisted partitions are " +
      "not replayed), in a group of its own like --from-beginning.",
  },
  {
    flag: "until-end",
    env: ["EVENTSINK_UNTIL_END"],
    boolean: true,
    help: "Note each partition's end offset at start, and exit once every record before it is accounted " +
      "for. Exit code 0 when all were delivered, 3 when some were dead-lettered or skipped.",
  },
  {
    flag: "keep-group",
    env: ["EVENTSINK_KEEP_GROUP"],
    boolean: true,
    help: "Keep a replay's or dry run's own consumer group (and its committed offsets) at the end.",
  },
  {
    flag: "dry-run",
    env: ["EVENTSINK_DRY_RUN"],
    boolean: true,
    help: "Read up to the end (from the service group's offsets, or from --from-*) and check each record " +
      "locally, reporting what would be sent: no POST, no commit, no dead letter.",
  },
  {
    flag: "max-rate",
    env: ["EVENTSINK_MAX_RATE"],
    value: "records/s",
    help: "Deliver at most this many records per second, over all partitions (e.g. 200), so that a " +
      "replay does not flood the EventStore. Default: no limit.",
  },
  {
    flag: "quiet",
    env: ["EVENTSINK_QUIET"],
    boolean: true,
    help: "No progress display in a replay or bounded run (the summary is still printed).",
  },
  {
    flag: "progress-interval",
    env: ["EVENTSINK_PROGRESS_INTERVAL"],
    default: "10s",
    value: "duration",
    help: "In a replay or bounded run whose stderr is not a terminal, log a progress line this often.",
  },
  {
    flag: "dead-letter-topic",
    env: ["EVENTSINK_DEAD_LETTER_TOPIC"],
    value: "name",
    help: "Topic for rejected messages (original value, key and headers, plus eventsink.* context headers).",
  },
  {
    flag: "on-rejected",
    env: ["EVENTSINK_ON_REJECTED"],
    value: REJECTED_POLICIES.join("|"),
    help: "A message the EventStore rejects as invalid (400, 409, 413, 415, 422) or that can never be a " +
      "valid request: write it to the dead-letter topic, skip it with a log line, or stop without " +
      "committing it. Default: dead-letter when --dead-letter-topic is set, else skip.",
  },
  {
    flag: "retry-initial",
    env: ["EVENTSINK_RETRY_INITIAL"],
    default: "500ms",
    value: "duration",
    help: "First retry delay after a transient failure; doubles per attempt, with full jitter.",
  },
  {
    flag: "retry-max",
    env: ["EVENTSINK_RETRY_MAX"],
    default: "30s",
    value: "duration",
    help: "Longest retry delay (a Retry-After from the EventStore may ask for more, up to 10m).",
  },
  {
    flag: "retry-give-up",
    env: ["EVENTSINK_RETRY_GIVE_UP"],
    default: "never",
    value: "duration|never",
    help: "Treat a message as rejected after failing transiently this long. Configuration faults " +
      "(401, 403, 404, 405) are never given up on.",
  },
  {
    flag: "request-timeout",
    env: ["EVENTSINK_REQUEST_TIMEOUT"],
    default: "30s",
    value: "duration",
    help: "Time allowed for one POST, answer included; a timeout is retried.",
  },
  {
    flag: "ordering",
    env: ["EVENTSINK_ORDERING"],
    default: "partition",
    value: ORDERINGS.join("|"),
    help: "Delivery order: strictly by offset within a partition; by key (records with the same key in " +
      "order, other keys at the same time); or none. Commits always stop at the first unfinished record.",
  },
  {
    flag: "max-in-flight",
    env: ["EVENTSINK_MAX_IN_FLIGHT"],
    default: "16",
    value: "n",
    help:
      "Records being delivered at once, across all partitions (the keep-alive connection pool is as large).",
  },
  {
    flag: "http2",
    env: ["EVENTSINK_HTTP2"],
    boolean: true,
    help:
      "Speak HTTP/2 to the EventStore (h2 over TLS, or h2c with prior knowledge over http) instead of HTTP/1.1.",
  },
  {
    flag: "shutdown-grace",
    env: ["EVENTSINK_SHUTDOWN_GRACE"],
    default: "20s",
    value: "duration",
    help: "On SIGTERM/SIGINT, time allowed for deliveries in flight to finish before they are abandoned " +
      "(uncommitted, so re-delivered on the next start).",
  },
  {
    flag: "log-level",
    env: ["EVENTSINK_LOG_LEVEL"],
    default: "info",
    value: LOG_LEVELS.join("|"),
    help: "Least severe level logged.",
  },
  {
    flag: "log-format",
    env: ["EVENTSINK_LOG_FORMAT"],
    default: "text",
    value: LOG_FORMATS.join("|"),
    help: "Log lines as text or as JSON objects, on stderr.",
  },
  {
    flag: "oauth-token-url",
    env: ["EVENTSINK_OAUTH_TOKEN_URL"],
    value: "url",
    help: "OAuth2 token endpoint: eventsink gets EventStore tokens with client credentials. Or give " +
      "--oauth-discovery-url.",
  },
  {
    flag: "oauth-discovery-url",
    env: ["EVENTSINK_OAUTH_DISCOVERY_URL", "AZURE_APP_WELL_KNOWN_URL"],
    value: "url",
    help: "OpenID Connect discovery document (…/.well-known/openid-configuration) naming the token endpoint.",
  },
  {
    flag: "oauth-client-id",
    env: ["EVENTSINK_OAUTH_CLIENT_ID", "AZURE_APP_CLIENT_ID"],
    value: "id",
    help: "eventsink's OAuth2 client id.",
  },
  {
    flag: "oauth-client-secret-file",
    env: ["EVENTSINK_OAUTH_CLIENT_SECRET_FILE"],
    value: "path",
    secret: SECRETS.oauthClientSecret,
    help: "File holding the OAuth2 client secret.",
  },
  {
    flag: "oauth-scope",
    env: ["EVENTSINK_OAUTH_SCOPE", "HOPS_EVENTSTORE_SCOPE"],
    value: "scope",
    help: "Scope to ask for, e.g. api://<eventstore-app>/.default (Azure AD needs one).",
  },
  {
    flag: "oauth-client-auth",
    env: ["EVENTSINK_OAUTH_CLIENT_AUTH"],
    default: "client_secret_post",
    value: OAUTH_CLIENT_AUTHS.join("|"),
    help: "How the client id and secret go to the token endpoint: in the form body, or as HTTP Basic.",
  },
  {
    flag: "eventstore-token-file",
    env: ["EVENTSINK_EVENTSTORE_TOKEN_FILE"],
    value: "path",
    secret: SECRETS.eventstoreToken,
    help: "File holding a static bearer token for the EventStore (instead of OAuth2).",
  },
  {
    flag: "eventstore-headers",
    env: ["EVENTSINK_EVENTSTORE_HEADERS"],
    value: "name=value,…",
    help: "Extra headers on every EventStore request; values may be %-encoded (a comma is %2C). " +
      "Their values are not logged.",
  },
  {
    flag: "eventstore-ca",
    env: ["EVENTSINK_EVENTSTORE_CA"],
    value: "path",
    help: "PEM file of CA certificates trusted for the EventStore and the token endpoint, besides the " +
      "system's. Certificates are always verified.",
  },
  {
    flag: "eventstore-cert",
    env: ["EVENTSINK_EVENTSTORE_CERT"],
    value: "path",
    help: "PEM client certificate (chain) for TLS client authentication to the EventStore.",
  },
  {
    flag: "eventstore-key",
    env: ["EVENTSINK_EVENTSTORE_KEY"],
    value: "path",
    help: "Unencrypted PEM private key of --eventstore-cert.",
  },
  {
    flag: "kafka-tls",
    env: ["EVENTSINK_KAFKA_TLS", "KAFKA_SECURITY_ENABLED"],
    boolean: true,
    help: "Connect to Kafka with TLS (certificates are always verified).",
  },
  {
    flag: "kafka-ca",
    env: ["EVENTSINK_KAFKA_CA", "KAFKA_CA_PATH"],
    value: "path",
    help: "PEM file of CA certificates trusted for the brokers (default: the system's). Needs --kafka-tls.",
  },
  {
    flag: "kafka-cert",
    env: ["EVENTSINK_KAFKA_CERT", "KAFKA_CERTIFICATE_PATH"],
    value: "path",
    help: "PEM client certificate (chain) for TLS client authentication to the brokers. Needs --kafka-tls.",
  },
  {
    flag: "kafka-key",
    env: ["EVENTSINK_KAFKA_KEY", "KAFKA_PRIVATE_KEY_PATH"],
    value: "path",
    help: "Unencrypted PEM private key of --kafka-cert.",
  },
  {
    flag: "kafka-sasl-mechanism",
    env: ["EVENTSINK_KAFKA_SASL_MECHANISM"],
    value: SASL_MECHANISMS.join("|"),
    help: "SASL authentication to the brokers, over TLS only (needs --kafka-tls).",
  },
  {
    flag: "kafka-sasl-username",
    env: ["EVENTSINK_KAFKA_SASL_USERNAME"],
    value: "name",
    help: "SASL user name.",
  },
  {
    flag: "kafka-sasl-password-file",
    env: ["EVENTSINK_KAFKA_SASL_PASSWORD_FILE"],
    value: "path",
    secret: SECRETS.kafkaSaslPassword,
    help: "File holding the SASL password.",
  },
  {
    flag: "http-listen",
    env: ["EVENTSINK_HTTP_LISTEN"],
    default: "127.0.0.1:8095",
    value: "host:port|off",
    help: "Address of the HTTP endpoint serving /healthz, /readyz and /metrics (also as /actuator/live, " +
      "/actuator/ready, /actuator/metrics); port 0 picks a free one; off: no endpoint.",
  },
] as const satisfies readonly OptionSpec[];

type OptionName = (typeof OPTIONS)[number]["flag"];
type RawValues = Partial<Record<OptionName, string | boolean>>;

/** Every environment variable eventsink reads; the Deno permission set must grant each one. */
export const ENV_NAMES: readonly string[] = [
  ...OPTIONS.flatMap((option) => option.env),
  ...Object.values(SECRETS).flatMap((spec) => spec.env),
  CREDENTIALS_DIRECTORY,
];

/** Reads flags (first) and environment variables (second) into a validated Config. Pure. */
export function parseCommand(args: string[], env: (name: string) => string | undefined): ParsedCommand {
  const check = args[0] === "check";
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({
      args: check ? args.slice(1) : args,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
        ...Object.fromEntries(
          OPTIONS.map((o) => [o.flag, { type: "boolean" in o ? "boolean" : "string" } as const]),
        ),
      },
    }).values;
  } catch (error) {
    return { kind: "usage-error", message: withSecretHint((error as Error).message) };
  }
  if (flags.help) return { kind: "help", text: helpText() };
  if (flags.version) return { kind: "version" };

  const raw: RawValues = {};
  const errors: string[] = [];
  for (const option of OPTIONS) {
    const fromFlag = flags[option.flag];
    if (fromFlag !== undefined) {
      raw[option.flag] = fromFlag;
      continue;
    }
    const envName = option.env.find((name) => env(name) !== undefined);
    if (envName === undefined) continue;
    const text = env(envName)!;
    if ("boolean" in option) {
      const value = parseBoolean(text);
      if (value === undefined) errors.push(`${envName}=${text} is not a boolean (use true or false)`);
      else raw[option.flag] = value;
    } else {
      raw[option.flag] = text;
    }
  }
  const config = errors.length === 0 ? buildConfig(raw, env, errors) : undefined;
  if (errors.length > 0 || config === undefined) {
    return { kind: "usage-error", message: errors.join("\n") };
  }
  return { kind: check ? "check" : "run", config };
}

/** A secret tried as a flag (`--oauth-client-secret …`) gets told where secrets go instead. */
function withSecretHint(message: string): string {
  const flag = /^Unknown option '--([^']+)'/.exec(message)?.[1];
  const spec = Object.values(SECRETS).find((secret) => secret.fileOption === `${flag}-file`);
  if (spec === undefined) return message;
  return `${message}: secrets are not taken on the command line. Set ${spec.env.join(" or ")}, ` +
    `give --${spec.fileOption}, or load the systemd credential ${spec.credential}`;
}

function parseBoolean(text: string): boolean | undefined {
  const normal = text.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(normal)) return true;
  if (["false", "0", "no", "off", ""].includes(normal)) return false;
  return undefined;
}

function buildConfig(
  raw: RawValues,
  env: (name: string) => string | undefined,
  errors: string[],
): Config | undefined {
  const text = (name: OptionName): string => {
    const spec: OptionSpec = OPTIONS.find((o) => o.flag === name)!;
    const value = raw[name] ?? spec.default;
    return typeof value === "string" ? value.trim() : "";
  };
  const optional = (name: OptionName): string | undefined => text(name) || undefined;
  const oneOf = <T extends string>(name: OptionName, allowed: readonly T[]): T => {
    const value = text(name);
    if (!(allowed as readonly string[]).includes(value)) {
      errors.push(`--${name} must be one of ${allowed.join(", ")}; got "${value}"`);
    }
    return value as T;
  };
  const duration = (name: OptionName, minMs: number): number => {
    const value = parseDuration(text(name));
    if (value === undefined || value < minMs) {
      errors.push(
        `--${name} must be a duration of at least ${formatDuration(minMs)} such as 500ms, 5s, 2m; ` +
          `got "${text(name)}"`,
      );
      return minMs;
    }
    return value;
  };

  const brokers = parseBrokers(text("brokers"), errors);
  const topic = text("topic");
  checkTopicName("topic", topic, errors);
  const deadLetterTopic = text("dead-letter-topic") || undefined;
  if (deadLetterTopic !== undefined) {
    checkTopicName("dead-letter-topic", deadLetterTopic, errors);
    if (deadLetterTopic === topic) errors.push("--dead-letter-topic must differ from --topic");
  }
  const group = text("group");
  if (group === "") errors.push("--group must not be empty");
  const clientId = text("client-id");
  if (clientId === "") errors.push("--client-id must not be empty");
  const eventstoreUrl = parseEventStoreUrl(text("eventstore-url"), errors);
  const rejected = rejectedConfig(
    raw["on-rejected"] === undefined ? undefined : oneOf("on-rejected", REJECTED_POLICIES),
    deadLetterTopic,
    errors,
  );
  const retry: RetryPolicy = {
    initialMs: duration("retry-initial", 1),
    maxMs: duration("retry-max", 1),
    giveUpMs: text("retry-give-up") === "never" ? undefined : duration("retry-give-up", 1_000),
  };
  if (retry.maxMs < retry.initialMs) {
    errors.push(
      `--retry-max (${formatDuration(retry.maxMs)}) must not be shorter than --retry-initial ` +
        `(${formatDuration(retry.initialMs)})`,
    );
  }
  const maxInFlight = Number(text("max-in-flight"));
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 4096) {
    errors.push(`--max-in-flight must be a whole number from 1 to 4096; got "${text("max-in-flight")}"`);
  }
  const replay = replayOptions(raw, duration("progress-interval", 100), errors);
  const maxRate = text("max-rate") === "" ? undefined : Number(text("max-rate"));
  if (maxRate !== undefined && !(maxRate >= 0.1 && maxRate <= 1_000_000)) {
    errors.push(
      `--max-rate must be a number of records per second from 0.1 to 1000000; got "${text("max-rate")}"`,
    );
  }
  const config: Config = {
    brokers,
    topic,
    group,
    clientId,
    eventstoreUrl,
    fromBeginning: raw["from-beginning"] === true,
    rejected,
    retry,
    requestTimeoutMs: duration("request-timeout", 100),
    ordering: oneOf("ordering", ORDERINGS),
    maxInFlight,
    http2: raw.http2 === true,
    shutdownGraceMs: duration("shutdown-grace", 0),
    logLevel: oneOf("log-level", LOG_LEVELS),
    logFormat: oneOf("log-format", LOG_FORMATS),
    eventstoreAuth: eventstoreAuth(optional, env, errors),
    eventstoreHeaders: parseHeaders(text("eventstore-headers"), errors),
    eventstoreTls: tlsFiles("eventstore", optional, errors),
    kafkaTls: undefined,
    kafkaSasl: kafkaSasl(optional, env, errors),
    httpListen: parseListen(text("http-listen"), errors),
    replay,
    maxRate,
  };
  if (raw["kafka-tls"] === true) {
    config.kafkaTls = tlsFiles("kafka", optional, errors);
  } else {
    const given = (["kafka-ca", "kafka-cert", "kafka-key"] as const).filter((name) => optional(name));
    if (given.length > 0) {
      errors.push(
        `${given.map((name) => `--${name}`).join(", ")} given but TLS to Kafka is off: add --kafka-tls ` +
          "(EVENTSINK_KAFKA_TLS or KAFKA_SECURITY_ENABLED=true), or remove them",
      );
    }
    if (config.kafkaSasl) {
      errors.push("--kafka-sasl-mechanism needs --kafka-tls: eventsink sends SASL credentials over TLS only");
    }
  }
  return errors.length === 0 ? config : undefined;
}

type Optional = (name: OptionName) => string | undefined;

function eventstoreAuth(
  optional: Optional,
  env: (name: string) => string | undefined,
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

function kafkaSasl(
  optional: Optional,
  env: (name: string) => string | undefined,
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

function tlsFiles(peer: "kafka" | "eventstore", optional: Optional, errors: string[]): TlsFiles {
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

function endpointUrl(option: OptionName, text: string, errors: string[]): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    errors.push(`--${option} "${text}" is not a URL`);
    return text;
  }
  if (!isSecureOrLocal(url.href)) {
    errors.push(`--${option} must be https (http only to localhost): the client secret goes there`);
  }
  return url.href;
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
    if (at < 0 || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
      errors.push(
        `--eventstore-headers: "${at < 0 ? pair : name}" is not name=value with a valid header name`,
      );
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

function replayOptions(raw: RawValues, progressIntervalMs: number, errors: string[]): ReplayOptions {
  const value = (name: OptionName) => (typeof raw[name] === "string" ? (raw[name] as string).trim() : "");
  const flag = (name: OptionName) => raw[name] === true;
  const timestamp = value("from-timestamp");
  const offsets = value("from-offsets");
  const starts = [
    flag("from-beginning") ? "--from-beginning" : "",
    timestamp ? "--from-timestamp" : "",
    offsets ? "--from-offsets" : "",
  ].filter((name) => name !== "");
  if (starts.length > 1) errors.push(`${starts.join(" and ")} exclude each other: give one`);
  let from: StartSpec | undefined;
  if (flag("from-beginning")) from = { kind: "beginning" };
  else if (timestamp) {
    const ms = parseTimestamp(timestamp, errors);
    if (ms !== undefined) from = { kind: "timestamp", ms };
  } else if (offsets) {
    const parsed = parseFromOffsets(offsets, errors);
    if (parsed !== undefined) from = { kind: "offsets", offsets: parsed };
  }
  const dryRun = flag("dry-run");
  const keepGroup = flag("keep-group");
  if (keepGroup && starts.length === 0 && !dryRun) {
    errors.push(
      "--keep-group applies to a replay's own group: add --from-beginning, --from-timestamp, " +
        "--from-offsets or --dry-run",
    );
  }
  return { from, untilEnd: flag("until-end"), keepGroup, dryRun, quiet: flag("quiet"), progressIntervalMs };
}

function rejectedConfig(
  policy: RejectedPolicy | undefined,
  deadLetterTopic: string | undefined,
  errors: string[],
): RejectedConfig {
  if (deadLetterTopic !== undefined) {
    if (policy === undefined || policy === "dead-letter") return { policy: "dead-letter", deadLetterTopic };
    errors.push(
      `--dead-letter-topic is set but --on-rejected=${policy} would never use it: drop one of them`,
    );
  } else if (policy === "dead-letter") {
    errors.push("--on-rejected=dead-letter needs --dead-letter-topic");
  }
  return { policy: policy === "stop" ? "stop" : "skip" };
}

function checkTopicName(flag: string, name: string, errors: string[]): void {
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(name)) {
    errors.push(
      `--${flag} "${name}" is not a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)`,
    );
  }
}

function parseBrokers(text: string, errors: string[]): string[] {
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

function parseListen(text: string, errors: string[]): ListenAddress | undefined {
  if (text === "off") return undefined;
  const match = /^(\[[0-9a-fA-F:]+\]|[^:\s\[\]]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65535) {
    errors.push(`--http-listen must be host:port (e.g. 127.0.0.1:8095, [::1]:8095) or off; got "${text}"`);
    return undefined;
  }
  return { hostname: match[1]!.replace(/^\[(.*)\]$/, "$1"), port };
}

function parseEventStoreUrl(text: string, errors: string[]): string {
  if (text === "") {
    errors.push("--eventstore-url is required (or EVENTSINK_EVENTSTORE_URL / HOPS_EVENTSTORE_BASE_URL)");
    return "";
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    errors.push(`--eventstore-url "${text}" is not a URL (e.g. https://eventstore.example.org)`);
    return "";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    errors.push(`--eventstore-url must be http or https; got "${url.protocol}"`);
  }
  if (url.search !== "" || url.hash !== "") {
    errors.push("--eventstore-url must be a base URL without query or fragment");
  }
  if (url.username !== "" || url.password !== "") {
    errors.push("--eventstore-url must not carry credentials");
  }
  return url.href.replace(/\/+$/, "");
}

/** The `--help` text, generated from the option table so that it cannot drift from the parser. */
export function helpText(): string {
  const lines = [
    "eventsink — forwards FHIR messages from a Kafka topic to the FHIR EventStore.",
    "",
    "Usage: eventsink [options]         forward until stopped (SIGTERM, SIGINT)",
    "       eventsink check [options]   check both ends with the same options: brokers, topic, consumer",
    "                                   group and lag, EventStore; exit 0 when all pass, 1 otherwise",
    "",
    "Every option can also be set by the environment variable named below it (a flag wins).",
    "",
    "Options:",
  ];
  for (const option of OPTIONS as readonly OptionSpec[]) {
    const value = option.value === undefined ? "" : ` <${option.value}>`;
    lines.push(`  --${option.flag}${value}`);
    lines.push(`      ${option.help}`);
    const fallback = option.default === undefined ? "" : `  (default: ${option.default})`;
    lines.push(`      env: ${option.env.join(", ")}${fallback}`);
    if (option.secret) {
      lines.push(
        `      or the secret itself in env ${option.secret.env.join(", ")}, ` +
          `or the systemd credential ${option.secret.credential}`,
      );
    }
  }
  lines.push("  -h, --help      Show this help and exit.");
  lines.push("  -V, --version   Show the versions of eventsink, Deno, V8, TypeScript and KafkaJS, and exit.");
  lines.push("");
  lines.push(
    "Secrets are never taken as flags. Each comes from a file (its --…-file option), from its environment",
    `variable, or from the systemd credential of its name in $${CREDENTIALS_DIRECTORY}, in that order.`,
    "",
  );
  lines.push(
    "Exit codes: 0 stopped cleanly (a run by hand: everything delivered; check: all passed), 1 runtime " +
      "failure (a run by hand stopped before its end; check: a check failed), 2 usage or configuration " +
      "error, 3 a run by hand in which some records were dead-lettered or skipped.",
  );
  return lines.join("\n");
}

/** The effective configuration as log fields: secrets as "[redacted]" with their source, header values left out. */
export function describeConfig(config: Config): Record<string, string | number | boolean | undefined> {
  const auth = config.eventstoreAuth;
  return {
    brokers: config.brokers.join(","),
    topic: config.topic,
    group: config.group,
    clientId: config.clientId,
    eventstoreUrl: config.eventstoreUrl,
    fromBeginning: config.fromBeginning,
    onRejected: config.rejected.policy,
    deadLetterTopic: config.rejected.deadLetterTopic,
    retryInitial: formatDuration(config.retry.initialMs),
    retryMax: formatDuration(config.retry.maxMs),
    retryGiveUp: config.retry.giveUpMs === undefined ? "never" : formatDuration(config.retry.giveUpMs),
    requestTimeout: formatDuration(config.requestTimeoutMs),
    ordering: config.ordering,
    maxInFlight: config.maxInFlight,
    http2: config.http2,
    shutdownGrace: formatDuration(config.shutdownGraceMs),
    eventstoreAuth: auth.kind,
    eventstoreToken: auth.kind === "token" ? describeSecretSource(auth.token) : undefined,
    oauthTokenUrl: auth.kind === "oauth2" && "tokenUrl" in auth.endpoint ? auth.endpoint.tokenUrl : undefined,
    oauthDiscoveryUrl: auth.kind === "oauth2" && "discoveryUrl" in auth.endpoint
      ? auth.endpoint.discoveryUrl
      : undefined,
    oauthClientId: auth.kind === "oauth2" ? auth.clientId : undefined,
    oauthClientSecret: auth.kind === "oauth2" ? describeSecretSource(auth.clientSecret) : undefined,
    oauthScope: auth.kind === "oauth2" ? auth.scope : undefined,
    oauthClientAuth: auth.kind === "oauth2" ? auth.clientAuth : undefined,
    eventstoreHeaders: Object.keys(config.eventstoreHeaders).map((name) => `${name}=${REDACTED}`).join(",") ||
      undefined,
    eventstoreCa: config.eventstoreTls.ca,
    eventstoreCert: config.eventstoreTls.cert,
    eventstoreKey: config.eventstoreTls.key,
    kafkaTls: config.kafkaTls !== undefined,
    kafkaCa: config.kafkaTls?.ca,
    kafkaCert: config.kafkaTls?.cert,
    kafkaKey: config.kafkaTls?.key,
    kafkaSaslMechanism: config.kafkaSasl?.mechanism,
    kafkaSaslUsername: config.kafkaSasl?.username,
    kafkaSaslPassword: describeSecretSource(config.kafkaSasl?.password),
    httpListen: config.httpListen === undefined ? "off" : formatAddress(config.httpListen),
    from: config.replay.from?.kind,
    untilEnd: config.replay.untilEnd,
    dryRun: config.replay.dryRun,
    keepGroup: config.replay.keepGroup,
    maxRate: config.maxRate,
  };
}
