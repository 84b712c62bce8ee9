import type { RetryPolicy } from "../delivery/backoff.ts";
import type { EventStoreAuth, KafkaSasl } from "../security/credentials.ts";
import type { TlsFiles } from "../security/tls_files.ts";
import type { ListenAddress } from "../operations/endpoints.ts";
import type { ReplayOptions } from "../replay/run_plan.ts";
import { parseFromOffsets, parseTimestamp, type StartSpec } from "../replay/start_position.ts";
import { REJECTED_POLICIES, type RejectedConfig, type RejectedPolicy } from "../settle/policy.ts";
import { type Ordering, ORDERINGS } from "../sink/ordering.ts";
import { formatDuration, parseDuration } from "../duration.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../log.ts";
import { terminalColumns } from "../replay/terminal.ts";
import { type Flags, readArgs } from "./command_line.ts";
import { helpText } from "./help.ts";
import { type OptionName, OPTIONS, type OptionSpec, type RawValues } from "./options.ts";
import {
  checkTopicName,
  type Env,
  eventstoreAuth,
  kafkaSasl,
  type Optional,
  parseBoolean,
  parseBrokers,
  parseEventStoreUrl,
  parseHeaders,
  parseListen,
  tlsFiles,
} from "./values.ts";

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
  /** A response waits while this process delivers the message it answers: every ordering but none. */
  responsesWait: boolean;
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

/**
 * Reads flags (first) and environment variables (second) into a validated Config. Pure but for
 * `columns`, the width `--help` is wrapped to: by default stdout's terminal's, 80 when it is none.
 */
export function parseCommand(
  args: string[],
  env: Env,
  columns: () => number = () => terminalColumns(Deno.stdout),
): ParsedCommand {
  const given = readArgs(args);
  if ("error" in given) return { kind: "usage-error", message: given.error };
  const { command, flags } = given;
  if (flags.help || command === "help") return { kind: "help", text: helpText(columns()) };
  if (flags.version) return { kind: "version" };

  const errors: string[] = [];
  const tlsOff = env(NODE_TLS_REJECT_UNAUTHORIZED);
  if (tlsOff !== undefined && tlsOff !== "1") {
    // Deno's node:tls reads it without a permission check: KafkaJS and undici would stop verifying.
    errors.push(
      `${NODE_TLS_REJECT_UNAUTHORIZED}=${tlsOff} is set in the environment, which could turn off TLS ` +
        "certificate verification; eventsink always verifies certificates: unset it (a CA of your own " +
        "goes in --eventstore-ca / --kafka-ca)",
    );
  }
  const { raw, origins } = rawValues(flags, env, errors);
  if (errors.length > 0) return { kind: "usage-error", message: errors.join("\n") };
  const config = buildConfig(raw, env, errors);
  if (config === undefined) {
    return { kind: "usage-error", message: errors.map((line) => nameOrigins(line, origins)).join("\n") };
  }
  return { kind: command === "check" ? "check" : "run", config };
}

/**
 * Each option's flag, else its first environment variable that is set (a boolean's text parsed), and
 * for each value from the environment (but a boolean's false, which is as good as not given) its variable.
 */
function rawValues(
  flags: Flags,
  env: Env,
  errors: string[],
): { raw: RawValues; origins: Map<string, string> } {
  const raw: RawValues = {};
  const origins = new Map<string, string>();
  for (const option of OPTIONS) {
    const fromFlag = flags[option.flag];
    if (fromFlag !== undefined) {
      raw[option.flag] = fromFlag;
      continue;
    }
    const envName = option.env.find((name) => env(name) !== undefined);
    if (envName === undefined) continue;
    const text = env(envName)!;
    const value = "boolean" in option ? parseBoolean(text) : text;
    if (value === undefined) errors.push(`${envName}=${text} is not a boolean (use true or false)`);
    else raw[option.flag] = value;
    if (value !== undefined && value !== false) origins.set(option.flag, envName);
  }
  return { raw, origins };
}

/**
 * An error line as the user sees it: the messages name options by flag, but an option whose value came
 * from the environment is named by the variable it came from (what is in quotes is a value: left alone).
 */
export function nameOrigins(line: string, origins: ReadonlyMap<string, string>): string {
  return line.split(/("[^"]*")/).map((part, i) =>
    i % 2 === 1 ? part : part.replace(/--([a-z0-9-]+)(?![\w-])/g, (flag, name) => origins.get(name) ?? flag)
  ).join("");
}

/** The environment variable with which Node's TLS stops verifying certificates; eventsink refuses it. */
export const NODE_TLS_REJECT_UNAUTHORIZED = "NODE_TLS_REJECT_UNAUTHORIZED";

/** Reads the raw values with their defaults; a value that is not valid adds a line to `errors`. */
interface Reader {
  errors: string[];
  /** The value or its default, trimmed; "" when there is neither (and for a boolean option). */
  text: (name: OptionName) => string;
  /** The value or its default, trimmed; undefined when empty. */
  optional: Optional;
  /** A boolean option that is on. */
  flag: (name: OptionName) => boolean;
  oneOf: <T extends string>(name: OptionName, allowed: readonly T[]) => T;
  /** In milliseconds, at least `minMs` (which it is when the value is not valid). */
  duration: (name: OptionName, minMs: number) => number;
  /** Whether the value was read without an error: cross-checks of a value that is not are left out. */
  valid: (name: OptionName) => boolean;
}

function reader(raw: RawValues, errors: string[]): Reader {
  const invalid = new Set<OptionName>();
  const text = (name: OptionName): string => {
    const spec: OptionSpec = OPTIONS.find((o) => o.flag === name)!;
    const value = raw[name] ?? spec.default;
    return typeof value === "string" ? value.trim() : "";
  };
  return {
    errors,
    text,
    optional: (name) => text(name) || undefined,
    flag: (name) => raw[name] === true,
    oneOf: <T extends string>(name: OptionName, allowed: readonly T[]): T => {
      const value = text(name);
      if (!(allowed as readonly string[]).includes(value)) {
        invalid.add(name);
        errors.push(`--${name} must be one of ${allowed.join(", ")}; got "${value}"`);
      }
      return value as T;
    },
    duration: (name, minMs) => {
      const value = parseDuration(text(name));
      if (value === undefined || value < minMs) {
        invalid.add(name);
        errors.push(
          `--${name} must be a duration of at least ${formatDuration(minMs)} such as 500ms, 5s, 2m; ` +
            `got "${text(name)}"`,
        );
        return minMs;
      }
      return value;
    },
    valid: (name) => !invalid.has(name),
  };
}

/** The Config, or undefined when `errors` has lines; the checks run (and report) in the order of the options. */
function buildConfig(raw: RawValues, env: Env, errors: string[]): Config | undefined {
  const read = reader(raw, errors);
  const { brokers, topic, deadLetterTopic, group, clientId } = kafkaNames(read);
  const eventstoreUrl = parseEventStoreUrl(read.text("eventstore-url"), errors);
  const policy = raw["on-rejected"] === undefined ? undefined : read.oneOf("on-rejected", REJECTED_POLICIES);
  const rejected = rejectedConfig(read.valid("on-rejected") ? policy : undefined, deadLetterTopic, errors);
  const retry = retryPolicy(read);
  const maxInFlight = parseMaxInFlight(read);
  const replay = replayOptions(read, read.duration("progress-interval", 100));
  const maxRate = parseMaxRate(read);
  const config: Config = {
    brokers,
    topic,
    group,
    clientId,
    eventstoreUrl,
    fromBeginning: read.flag("from-beginning"),
    rejected,
    retry,
    requestTimeoutMs: read.duration("request-timeout", 100),
    ordering: read.oneOf("ordering", ORDERINGS),
    responsesWait: read.text("ordering") !== "none",
    maxInFlight,
    http2: read.flag("http2"),
    shutdownGraceMs: read.duration("shutdown-grace", 0),
    logLevel: read.oneOf("log-level", LOG_LEVELS),
    logFormat: read.oneOf("log-format", LOG_FORMATS),
    eventstoreAuth: eventstoreAuth(read.optional, env, errors),
    eventstoreHeaders: parseHeaders(read.text("eventstore-headers"), errors),
    eventstoreTls: tlsFiles("eventstore", read.optional, errors),
    kafkaTls: undefined,
    kafkaSasl: kafkaSasl(read.optional, env, errors),
    httpListen: parseListen(read.text("http-listen"), errors),
    replay,
    maxRate,
  };
  config.kafkaTls = kafkaTls(read, config.kafkaSasl !== undefined);
  return errors.length === 0 ? config : undefined;
}

/** The brokers, and the names eventsink uses in Kafka: topics, consumer group, client id. */
function kafkaNames(read: Reader) {
  const { text, errors } = read;
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
  return { brokers, topic, deadLetterTopic, group, clientId };
}

function retryPolicy(read: Reader): RetryPolicy {
  const retry: RetryPolicy = {
    initialMs: read.duration("retry-initial", 1),
    maxMs: read.duration("retry-max", 1),
    giveUpMs: read.text("retry-give-up") === "never" ? undefined : read.duration("retry-give-up", 1_000),
    poison: read.text("poison-after") === "off"
      ? undefined
      : { afterMs: read.duration("poison-after", 1_000), attempts: poisonAttempts(read) },
    responseWaitMs: read.text("response-wait") === "off" ? undefined : read.duration("response-wait", 1_000),
  };
  if (read.valid("retry-max") && read.valid("retry-initial") && retry.maxMs < retry.initialMs) {
    read.errors.push(
      `--retry-max (${formatDuration(retry.maxMs)}) must not be shorter than --retry-initial ` +
        `(${formatDuration(retry.initialMs)})`,
    );
  }
  return retry;
}

function poisonAttempts({ text, errors }: Reader): number {
  const attempts = Number(text("poison-attempts"));
  if (!Number.isInteger(attempts) || attempts < 2 || attempts > 1_000_000) {
    errors.push(
      `--poison-attempts must be a whole number from 2 to 1000000; got "${text("poison-attempts")}"`,
    );
  }
  return attempts;
}

function parseMaxInFlight({ text, errors }: Reader): number {
  const maxInFlight = Number(text("max-in-flight"));
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 4096) {
    errors.push(`--max-in-flight must be a whole number from 1 to 4096; got "${text("max-in-flight")}"`);
  }
  return maxInFlight;
}

function parseMaxRate({ text, errors }: Reader): number | undefined {
  const maxRate = text("max-rate") === "" ? undefined : Number(text("max-rate"));
  if (maxRate !== undefined && !(maxRate >= 0.1 && maxRate <= 1_000_000)) {
    errors.push(
      `--max-rate must be a number of records per second from 0.1 to 1000000; got "${text("max-rate")}"`,
    );
  }
  return maxRate;
}

/** TLS to Kafka with --kafka-tls; without it, its files and SASL are refused. */
function kafkaTls({ flag, optional, errors }: Reader, sasl: boolean): TlsFiles | undefined {
  if (flag("kafka-tls")) return tlsFiles("kafka", optional, errors);
  const given = (["kafka-ca", "kafka-cert", "kafka-key"] as const).filter((name) => optional(name));
  if (given.length > 0) {
    errors.push(
      `${given.map((name) => `--${name}`).join(", ")} given but TLS to Kafka is off: add --kafka-tls ` +
        "(EVENTSINK_KAFKA_TLS or KAFKA_SECURITY_ENABLED=true), or remove them",
    );
  }
  if (sasl) {
    errors.push("--kafka-sasl-mechanism needs --kafka-tls: eventsink sends SASL credentials over TLS only");
  }
  return undefined;
}

function replayOptions({ text, flag, errors }: Reader, progressIntervalMs: number): ReplayOptions {
  const timestamp = text("from-timestamp");
  const offsets = text("from-offsets");
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
