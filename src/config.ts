import { parseArgs } from "node:util";
import { formatDuration, parseDuration } from "./duration.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "./log.ts";
import { parseFromOffsets, parseTimestamp, type StartSpec } from "./start_position.ts";

/** What to do with a message the EventStore rejects as invalid (DESIGN.md §3). */
export type RejectedPolicy = "dead-letter" | "skip" | "stop";
const REJECTED_POLICIES: readonly RejectedPolicy[] = ["dead-letter", "skip", "stop"];

/** The rejected-message policy, with the dead-letter topic exactly when the policy needs one. */
export type RejectedConfig =
  | { policy: "skip" | "stop"; deadLetterTopic?: undefined }
  | { policy: "dead-letter"; deadLetterTopic: string };

/** Retry timing for transient failures and configuration faults. */
export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  /** Undefined: never give up on a transient failure (the default). */
  giveUpMs: number | undefined;
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
  maxInFlight: number;
  shutdownGraceMs: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  replay: ReplayOptions;
  /** Records per second at most, over all partitions; undefined: no limit. */
  maxRate: number | undefined;
}

/** The outcome of reading the command line and environment. */
export type ParsedCommand =
  | { kind: "run"; config: Config }
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
}

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
    flag: "max-in-flight",
    env: ["EVENTSINK_MAX_IN_FLIGHT"],
    default: "16",
    value: "n",
    help: "Partitions delivered in parallel; within a partition, records go one at a time in offset order.",
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
] as const satisfies readonly OptionSpec[];

type OptionName = (typeof OPTIONS)[number]["flag"];
type RawValues = Partial<Record<OptionName, string | boolean>>;

/** Every environment variable eventsink reads; the Deno permission set must grant each one. */
export const ENV_NAMES: readonly string[] = OPTIONS.flatMap((option) => option.env);

/** Reads flags (first) and environment variables (second) into a validated Config. Pure. */
export function parseCommand(args: string[], env: (name: string) => string | undefined): ParsedCommand {
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({
      args,
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
    return { kind: "usage-error", message: (error as Error).message };
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
  const config = errors.length === 0 ? buildConfig(raw, errors) : undefined;
  if (errors.length > 0 || config === undefined) {
    return { kind: "usage-error", message: errors.join("\n") };
  }
  return { kind: "run", config };
}

function parseBoolean(text: string): boolean | undefined {
  const normal = text.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(normal)) return true;
  if (["false", "0", "no", "off", ""].includes(normal)) return false;
  return undefined;
}

function buildConfig(raw: RawValues, errors: string[]): Config | undefined {
  const text = (name: OptionName): string => {
    const spec: OptionSpec = OPTIONS.find((o) => o.flag === name)!;
    const value = raw[name] ?? spec.default;
    return typeof value === "string" ? value.trim() : "";
  };
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
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 1024) {
    errors.push(`--max-in-flight must be a whole number from 1 to 1024; got "${text("max-in-flight")}"`);
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
    maxInFlight,
    shutdownGraceMs: duration("shutdown-grace", 0),
    logLevel: oneOf("log-level", LOG_LEVELS),
    logFormat: oneOf("log-format", LOG_FORMATS),
    replay,
    maxRate,
  };
  return errors.length === 0 ? config : undefined;
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
    "Usage: eventsink [options]",
    "",
    "Every option can also be set by the environment variable named below it (a flag wins).",
    "",
    "Options:",
  ];
  for (const option of OPTIONS) {
    const value = "value" in option ? ` <${option.value}>` : "";
    lines.push(`  --${option.flag}${value}`);
    lines.push(`      ${option.help}`);
    const fallback = "default" in option ? `  (default: ${option.default})` : "";
    lines.push(`      env: ${option.env.join(", ")}${fallback}`);
  }
  lines.push("  -h, --help      Show this help and exit.");
  lines.push("  -V, --version   Show the version and exit.");
  lines.push("");
  lines.push(
    "Exit codes: 0 stopped cleanly (a replay or bounded run: everything delivered), 1 runtime failure " +
      "(or a bounded run stopped before its end), 2 usage or configuration error, 3 a replay or bounded " +
      "run in which some records were dead-lettered or skipped.",
  );
  return lines.join("\n");
}

/** The effective configuration as log fields (no secrets are held in Config yet). */
export function describeConfig(config: Config): Record<string, unknown> {
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
    maxInFlight: config.maxInFlight,
    shutdownGrace: formatDuration(config.shutdownGraceMs),
    from: config.replay.from?.kind,
    untilEnd: config.replay.untilEnd,
    dryRun: config.replay.dryRun,
    keepGroup: config.replay.keepGroup,
    maxRate: config.maxRate,
  };
}
