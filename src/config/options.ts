import { CREDENTIALS_DIRECTORY, type SecretSpec } from "../security/secrets.ts";
import { OAUTH_CLIENT_AUTHS, SASL_MECHANISMS, SECRETS } from "../security/credentials.ts";
import { REJECTED_POLICIES } from "../settle/policy.ts";
import { ORDERINGS } from "../sink/ordering.ts";
import { LOG_FORMATS, LOG_LEVELS } from "../log.ts";

/** One option: how it is given and how `--help` shows it. */
export interface OptionSpec {
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

// Each option once: flag, environment names, default and help. `--help` (help.ts) and the README's table
// (reference.ts) are generated from this table.
export const OPTIONS = [
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
      "for. Exit code 0 when all were delivered, 3 when some were dead-lettered, skipped or deleted by " +
      "Kafka before delivery.",
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
    flag: "poison-after",
    env: ["EVENTSINK_POISON_AFTER"],
    default: "5m",
    value: "duration|off",
    help: "Treat a message as rejected once it has failed this long (and --poison-attempts times) with 5xx " +
      "or timeouts while the EventStore worked (its 500 named a unique constraint the message breaks, it " +
      "stored other messages, or, no other record failing, it answered a probe): a poison record, not an outage.",
  },
  {
    flag: "poison-attempts",
    env: ["EVENTSINK_POISON_ATTEMPTS"],
    default: "10",
    value: "n",
    help: "Failed attempts a poison record needs besides --poison-after.",
  },
  {
    flag: "response-wait",
    env: ["EVENTSINK_RESPONSE_WAIT"],
    default: "5m",
    value: "duration|off",
    help: "Retry a response (MessageHeader.response) this long while the EventStore answers that the " +
      "message it answers does not exist yet (it may be on another partition); then it is rejected.",
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
    default: "message",
    value: ORDERINGS.join("|"),
    help: "Delivery order: strictly by offset within a partition; by key (records with the same key in " +
      "order, other keys at the same time); by message (at the same time, but a response after the message " +
      "it answers); or none. Commits always stop at the first unfinished record.",
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

export type OptionName = (typeof OPTIONS)[number]["flag"];
/** Each option as given, by flag or environment variable, before its default and validation. */
export type RawValues = Partial<Record<OptionName, string | boolean>>;

/** Every environment variable eventsink reads; the Deno permission set must grant each one. */
export const ENV_NAMES: readonly string[] = [
  ...OPTIONS.flatMap((option) => option.env),
  ...Object.values(SECRETS).flatMap((spec) => spec.env),
  CREDENTIALS_DIRECTORY,
];
