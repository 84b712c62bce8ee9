import assert from "node:assert/strict";
import { type Config, ENV_NAMES, helpText, parseCommand } from "../src/config.ts";

const URL_FLAG = ["--eventstore-url", "http://eventstore.test"];
const noEnv = () => undefined;

function run(args: string[], env: Record<string, string> = {}): Config {
  const parsed = parseCommand(args, (name) => env[name]);
  assert.equal(parsed.kind, "run", parsed.kind === "usage-error" ? parsed.message : "");
  return (parsed as { config: Config }).config;
}

function usageError(args: string[], env: Record<string, string> = {}): string {
  const parsed = parseCommand(args, (name) => env[name]);
  assert.equal(parsed.kind, "usage-error");
  return (parsed as { message: string }).message;
}

Deno.test("config: defaults are the original service's", () => {
  const config = run(URL_FLAG);
  assert.deepEqual(config.brokers, ["localhost:9092"]);
  assert.equal(config.topic, "helseopplysninger.rapid");
  assert.equal(config.group, "hops-eventsink-group");
  assert.equal(config.clientId, "hops-eventsink");
  assert.deepEqual(config.rejected, { policy: "skip" });
  assert.equal(config.fromBeginning, false);
  assert.equal(config.retry.giveUpMs, undefined);
  assert.equal(config.logFormat, "text");
});

Deno.test("config: flag beats our env name, which beats the original's alias", () => {
  const env = { EVENTSINK_TOPIC: "ours", KAFKA_TOPIC: "original", KAFKA_BROKERS: "b1:1,b2:2" };
  assert.equal(run(URL_FLAG, env).topic, "ours");
  assert.equal(run([...URL_FLAG, "--topic", "flag"], env).topic, "flag");
  assert.equal(run(URL_FLAG, { KAFKA_TOPIC: "original" }).topic, "original");
  assert.deepEqual(run(URL_FLAG, env).brokers, ["b1:1", "b2:2"]);
});

Deno.test("config: the original's HOPS_EVENTSTORE_BASE_URL works and a trailing slash is dropped", () => {
  const config = run([], { HOPS_EVENTSTORE_BASE_URL: "https://es.test/base/" });
  assert.equal(config.eventstoreUrl, "https://es.test/base");
});

Deno.test("config: durations and numbers", () => {
  const config = run([...URL_FLAG, "--retry-initial", "250ms", "--retry-max", "2m", "--retry-give-up", "1h"]);
  assert.deepEqual(config.retry, { initialMs: 250, maxMs: 120_000, giveUpMs: 3_600_000 });
  assert.equal(run([...URL_FLAG, "--max-in-flight", "4"]).maxInFlight, 4);
  assert.equal(run(URL_FLAG, { EVENTSINK_FROM_BEGINNING: "true" }).fromBeginning, true);
});

Deno.test("config: bad usage is reported with every problem named", async (t) => {
  await t.step("missing EventStore URL", () => {
    assert.match(usageError([]), /--eventstore-url is required/);
  });
  await t.step("unknown flag", () => {
    assert.match(usageError(["--nope"]), /Unknown option '--nope'/);
  });
  await t.step("bad values, all at once", () => {
    const message = usageError([
      ...URL_FLAG,
      "--retry-initial",
      "5",
      "--on-rejected",
      "drop",
      "--max-in-flight",
      "0",
      "--brokers",
      "nohostport",
      "--topic",
      "bad topic",
    ]);
    for (
      const expected of [
        /--retry-initial/,
        /--on-rejected must be one of dead-letter, skip, stop/,
        /--max-in-flight/,
        /nohostport/,
        /--topic/,
      ]
    ) {
      assert.match(message, expected);
    }
  });
  await t.step("retry max shorter than initial", () => {
    assert.match(usageError([...URL_FLAG, "--retry-initial", "10s", "--retry-max", "1s"]), /--retry-max/);
  });
  await t.step("bad URL and scheme", () => {
    assert.match(usageError(["--eventstore-url", "eventstore"]), /is not a URL/);
    assert.match(usageError(["--eventstore-url", "ftp://x"]), /http or https/);
  });
  await t.step("bad boolean in the environment", () => {
    assert.match(
      usageError(URL_FLAG, { EVENTSINK_FROM_BEGINNING: "maybe" }),
      /EVENTSINK_FROM_BEGINNING=maybe/,
    );
  });
});

Deno.test("config: the rejected-message policy and its dead-letter topic", () => {
  assert.deepEqual(run([...URL_FLAG, "--dead-letter-topic", "dlq"]).rejected, {
    policy: "dead-letter",
    deadLetterTopic: "dlq",
  });
  assert.deepEqual(run([...URL_FLAG, "--on-rejected", "stop"]).rejected, { policy: "stop" });
  assert.match(usageError([...URL_FLAG, "--on-rejected", "dead-letter"]), /needs --dead-letter-topic/);
  assert.match(
    usageError([...URL_FLAG, "--dead-letter-topic", "dlq", "--on-rejected", "skip"]),
    /never use it/,
  );
  assert.match(usageError([...URL_FLAG, "--topic", "t", "--dead-letter-topic", "t"]), /must differ/);
});

Deno.test("config: --help names every flag and env var; --version", () => {
  const parsed = parseCommand(["--help"], noEnv);
  assert.equal(parsed.kind, "help");
  const text = (parsed as { text: string }).text;
  for (const name of ENV_NAMES) assert.ok(text.includes(name), `${name} missing from --help`);
  assert.equal(helpText(), text);
  assert.equal(parseCommand(["--version"], noEnv).kind, "version");
});

Deno.test("config: runs by hand", async (t) => {
  await t.step("defaults: the service, no limit", () => {
    const config = run(URL_FLAG);
    assert.deepEqual(config.replay, {
      from: undefined,
      untilEnd: false,
      keepGroup: false,
      dryRun: false,
      quiet: false,
      progressIntervalMs: 10_000,
    });
    assert.equal(config.maxRate, undefined);
  });
  await t.step("start positions", () => {
    assert.deepEqual(run([...URL_FLAG, "--from-beginning"]).replay.from, { kind: "beginning" });
    assert.deepEqual(run([...URL_FLAG, "--from-timestamp", "2026-11-28"]).replay.from, {
      kind: "timestamp",
      ms: Date.UTC(2026, 10, 28),
    });
    assert.deepEqual(run(URL_FLAG, { EVENTSINK_FROM_OFFSETS: "0=5,2=7" }).replay.from, {
      kind: "offsets",
      offsets: new Map([[0, 5], [2, 7]]),
    });
  });
  await t.step("flags and their environment variables", () => {
    const config = run(
      [...URL_FLAG, "--until-end", "--dry-run", "--keep-group", "--quiet", "--max-rate", "12.5"],
      { EVENTSINK_PROGRESS_INTERVAL: "30s" },
    );
    assert.deepEqual(
      [config.replay.untilEnd, config.replay.dryRun, config.replay.keepGroup, config.replay.quiet],
      [true, true, true, true],
    );
    assert.equal(config.replay.progressIntervalMs, 30_000);
    assert.equal(config.maxRate, 12.5);
    assert.equal(run(URL_FLAG, { EVENTSINK_MAX_RATE: "200" }).maxRate, 200);
  });
  await t.step("bad combinations and values", () => {
    assert.match(
      usageError([...URL_FLAG, "--from-beginning", "--from-offsets", "0=1"]),
      /--from-beginning and --from-offsets exclude each other/,
    );
    assert.match(usageError([...URL_FLAG, "--keep-group"]), /--keep-group applies to a replay's own group/);
    assert.match(
      usageError([...URL_FLAG, "--from-timestamp", "noon"]),
      /--from-timestamp must be an ISO 8601/,
    );
    assert.match(usageError([...URL_FLAG, "--from-offsets", "a=b"]), /--from-offsets entry "a=b"/);
    for (const rate of ["0", "-5", "fast", "0.01"]) {
      assert.match(usageError([...URL_FLAG, `--max-rate=${rate}`]), /--max-rate must be a number/);
    }
    assert.match(usageError([...URL_FLAG, "--progress-interval", "5"]), /--progress-interval/);
  });
});
