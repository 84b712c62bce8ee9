import assert from "node:assert/strict";
import { describeConfig } from "./describe.ts";
import { helpText } from "./help.ts";
import { ENV_NAMES } from "./options.ts";
import { type Config, nameOrigins, parseCommand } from "./parse.ts";

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
  assert.equal(config.ordering, "message", "concurrent, a response after the message it answers");
  assert.equal(config.responsesWait, true);
  assert.equal(run([...URL_FLAG, "--ordering", "none"]).responsesWait, false);
  assert.equal(run([...URL_FLAG, "--ordering", "partition"]).responsesWait, true);
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
  assert.deepEqual(config.retry, {
    initialMs: 250,
    maxMs: 120_000,
    giveUpMs: 3_600_000,
    poison: { afterMs: 300_000, attempts: 10 },
    responseWaitMs: 300_000,
  });
  assert.equal(run([...URL_FLAG, "--max-in-flight", "4"]).maxInFlight, 4);
  assert.equal(run([...URL_FLAG, "--poison-after", "off"]).retry.poison, undefined);
  assert.deepEqual(run([...URL_FLAG, "--poison-after", "30m", "--poison-attempts", "50"]).retry.poison, {
    afterMs: 1_800_000,
    attempts: 50,
  });
  assert.match(
    usageError([...URL_FLAG, "--poison-attempts", "1"]),
    /--poison-attempts must be a whole number from 2/,
  );
  assert.match(usageError([...URL_FLAG, "--poison-after", "soon"]), /--poison-after must be a duration/);
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

Deno.test("config: --help (and `help`) names every flag and env var, wrapped to the columns; --version", () => {
  const parsed = parseCommand(["--help"], noEnv, () => 72);
  assert.equal(parsed.kind, "help");
  const text = (parsed as { text: string }).text;
  for (const name of ENV_NAMES) assert.ok(text.includes(name), `${name} missing from --help`);
  assert.equal(helpText(72), text);
  assert.deepEqual(parseCommand(["help"], noEnv, () => 72), parsed, "`eventsink help` is --help");
  assert.equal(parseCommand(["--version"], noEnv).kind, "version");
});

Deno.test("config: a value that does not parse is one error, without the cross-checks built on it", () => {
  assert.equal(
    usageError([...URL_FLAG, "--retry-max", "5"]),
    '--retry-max must be a duration of at least 1ms such as 500ms, 5s, 2m; got "5"',
  );
  assert.equal(
    usageError([...URL_FLAG, "--retry-initial", "soon", "--retry-max", "1ms"]),
    '--retry-initial must be a duration of at least 1ms such as 500ms, 5s, 2m; got "soon"',
  );
  assert.equal(
    usageError([...URL_FLAG, "--on-rejected", "drop", "--dead-letter-topic", "dlq"]),
    '--on-rejected must be one of dead-letter, skip, stop; got "drop"',
  );
});

Deno.test("config: an error about a value from the environment names its variable", () => {
  assert.equal(
    usageError(URL_FLAG, { EVENTSINK_RETRY_MAX: "5" }),
    'EVENTSINK_RETRY_MAX must be a duration of at least 1ms such as 500ms, 5s, 2m; got "5"',
  );
  assert.equal(
    usageError([...URL_FLAG, "--retry-max", "1s"], { EVENTSINK_RETRY_INITIAL: "10s" }),
    "--retry-max (1s) must not be shorter than EVENTSINK_RETRY_INITIAL (10s)",
  );
  assert.match(usageError(URL_FLAG, { KAFKA_TOPIC: "bad topic" }), /^KAFKA_TOPIC "bad topic" is not a Kafka/);
  assert.equal(
    usageError(URL_FLAG, { EVENTSINK_DEAD_LETTER_TOPIC: "dlq", EVENTSINK_ON_REJECTED: "skip" }),
    "EVENTSINK_DEAD_LETTER_TOPIC is set but EVENTSINK_ON_REJECTED=skip would never use it: drop one of them",
  );
  assert.match(
    usageError(URL_FLAG, { EVENTSINK_KAFKA_TLS: "false", KAFKA_CA_PATH: "/ca.pem" }),
    /^KAFKA_CA_PATH given but TLS to Kafka is off: add --kafka-tls /,
    "a boolean set to false is named as the flag to add",
  );
});

Deno.test("config: nameOrigins renames flags outside quotes only", () => {
  const origins = new Map([["topic", "KAFKA_TOPIC"], ["brokers", "KAFKA_BROKERS"]]);
  assert.equal(
    nameOrigins('--topic "--brokers x" is wrong; --topic-x, --brokers=y, --group', origins),
    'KAFKA_TOPIC "--brokers x" is wrong; --topic-x, KAFKA_BROKERS=y, --group',
  );
});

const OAUTH_ENV = {
  AZURE_APP_WELL_KNOWN_URL: "https://login.test/tenant/v2.0/.well-known/openid-configuration",
  AZURE_APP_CLIENT_ID: "eventsink-app",
  AZURE_APP_CLIENT_SECRET: "client-secret-value-1",
  HOPS_EVENTSTORE_SCOPE: "api://eventstore/.default",
};

Deno.test("config: the original's Azure variables give OAuth2 client credentials", () => {
  const config = run(["--eventstore-url", "https://es.test"], OAUTH_ENV);
  const auth = config.eventstoreAuth;
  assert.equal(auth.kind, "oauth2");
  if (auth.kind !== "oauth2") return;
  assert.deepEqual(auth.endpoint, { discoveryUrl: OAUTH_ENV.AZURE_APP_WELL_KNOWN_URL });
  assert.equal(auth.clientId, "eventsink-app");
  assert.equal(auth.scope, "api://eventstore/.default");
  assert.equal(auth.clientAuth, "client_secret_post");
  assert.equal(
    auth.clientSecret.from === "env" && auth.clientSecret.secret.reveal(),
    "client-secret-value-1",
  );
  const dump = JSON.stringify(describeConfig(config));
  assert.ok(!dump.includes("client-secret-value-1"), dump);
  assert.match(dump, /"oauthClientSecret":"\[redacted\] \(env AZURE_APP_CLIENT_SECRET\)"/);
});

Deno.test("config: a secret file wins, a systemd credential is the fallback", () => {
  const file = run([
    ...URL_FLAG,
    "--oauth-token-url",
    "https://login.test/token",
    "--oauth-client-id",
    "c",
    "--oauth-client-secret-file",
    "/etc/eventsink/secret",
  ], { AZURE_APP_CLIENT_SECRET: "ignored" });
  assert.deepEqual(file.eventstoreAuth.kind === "oauth2" && file.eventstoreAuth.clientSecret, {
    from: "file",
    path: "/etc/eventsink/secret",
  });
  const credential = run([
    ...URL_FLAG,
    "--kafka-tls",
    "--kafka-sasl-mechanism",
    "scram-sha-512",
    "--kafka-sasl-username",
    "eventsink",
  ], { CREDENTIALS_DIRECTORY: "/run/credentials/eventsink.service" });
  assert.deepEqual(credential.kafkaSasl?.password, {
    from: "credential",
    path: "/run/credentials/eventsink.service/kafka-sasl-password",
  });
  const token = run(URL_FLAG, { EVENTSINK_EVENTSTORE_TOKEN: "static-token-1" });
  assert.equal(token.eventstoreAuth.kind, "token");
  assert.ok(!JSON.stringify(describeConfig(token)).includes("static-token-1"));
});

Deno.test("config: the original's Kafka TLS variables", () => {
  const config = run(URL_FLAG, {
    KAFKA_SECURITY_ENABLED: "true",
    KAFKA_CA_PATH: "/var/run/secrets/ca.pem",
    KAFKA_CERTIFICATE_PATH: "/var/run/secrets/cert.pem",
    KAFKA_PRIVATE_KEY_PATH: "/var/run/secrets/key.pem",
  });
  assert.deepEqual(config.kafkaTls, {
    ca: "/var/run/secrets/ca.pem",
    cert: "/var/run/secrets/cert.pem",
    key: "/var/run/secrets/key.pem",
  });
  assert.equal(run(URL_FLAG).kafkaTls, undefined);
});

Deno.test("config: security settings that cannot work together are refused", async (t) => {
  await t.step("Kafka certificate files without TLS", () => {
    assert.match(
      usageError(URL_FLAG, { KAFKA_CA_PATH: "/ca.pem" }),
      /KAFKA_CA_PATH given but TLS to Kafka is off/,
    );
  });
  await t.step("SASL without TLS, or without a user or password", () => {
    const message = usageError([...URL_FLAG, "--kafka-sasl-mechanism", "scram-sha-512"]);
    assert.match(message, /needs --kafka-tls/);
    assert.match(message, /needs --kafka-sasl-username/);
    assert.match(
      message,
      /the Kafka SASL password: set EVENTSINK_KAFKA_SASL_PASSWORD, give --kafka-sasl-password-file/,
    );
    assert.match(
      usageError([...URL_FLAG, "--kafka-tls", "--kafka-sasl-mechanism", "gssapi"]),
      /must be one of plain/,
    );
  });
  await t.step("a client certificate without its key", () => {
    assert.match(
      usageError([...URL_FLAG, "--eventstore-cert", "/c.pem"]),
      /--eventstore-cert and --eventstore-key go together/,
    );
  });
  await t.step("OAuth2 half configured, twice configured, or over http", () => {
    assert.match(usageError(URL_FLAG, { AZURE_APP_CLIENT_ID: "x" }), /AZURE_APP_CLIENT_ID|--oauth-client-id/);
    assert.match(
      usageError(URL_FLAG, { AZURE_APP_CLIENT_SECRET: "s" }),
      /AZURE_APP_CLIENT_SECRET given without --oauth-token-url/,
    );
    const half = usageError([...URL_FLAG, "--oauth-token-url", "https://login.test/token"]);
    assert.match(half, /OAuth2 needs --oauth-client-id/);
    assert.match(half, /OAuth2 needs the OAuth2 client secret/);
    assert.match(
      usageError([...URL_FLAG, "--oauth-token-url", "https://login.test/token"], OAUTH_ENV),
      /not both/,
    );
    assert.match(
      usageError(URL_FLAG, { ...OAUTH_ENV, EVENTSINK_EVENTSTORE_TOKEN: "t" }),
      /a static EventStore token or OAuth2 client credentials, not both/,
    );
    assert.match(
      usageError(URL_FLAG, { ...OAUTH_ENV, AZURE_APP_WELL_KNOWN_URL: "http://login.test/.well-known" }),
      /must be https/,
    );
  });
  await t.step("a secret tried as a flag is pointed at the right ways", () => {
    assert.match(
      usageError(["--oauth-client-secret", "hunter2"]),
      /secrets are not taken on the command line. Set EVENTSINK_OAUTH_CLIENT_SECRET or AZURE_APP_CLIENT_SECRET/,
    );
  });
});

Deno.test("config: extra EventStore headers", () => {
  const config = run([...URL_FLAG, "--eventstore-headers", "X-Tenant=nav, x-note=a%2Cb%3Dc"]);
  assert.deepEqual(config.eventstoreHeaders, { "x-tenant": "nav", "x-note": "a,b=c" });
  assert.match(
    JSON.stringify(describeConfig(config)),
    /"eventstoreHeaders":"x-tenant=\[redacted\],x-note=\[redacted\]"/,
  );
  assert.match(
    usageError([...URL_FLAG, "--eventstore-headers", "Authorization=Bearer x"]),
    /set by eventsink itself/,
  );
  assert.match(usageError([...URL_FLAG, "--eventstore-headers", "novalue"]), /not name=value/);
  assert.match(usageError([...URL_FLAG, "--eventstore-headers", "x-a=%E0"]), /not validly %-encoded/);
});

Deno.test("config: eventsink.permissions grants every environment variable eventsink reads", async () => {
  const permissions = await Deno.readTextFile(new URL("../../eventsink.permissions", import.meta.url));
  const granted = /^--allow-env=(.*)$/m.exec(permissions)![1]!.split(",");
  const allowed = (name: string) =>
    granted.some((pattern) =>
      pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : name === pattern
    );
  for (const name of ENV_NAMES) assert.ok(allowed(name), `${name} is not in --allow-env`);
});

Deno.test("config: --http-listen takes host:port (IPv6 in brackets), port 0, or off", () => {
  assert.deepEqual(run(URL_FLAG).httpListen, { hostname: "127.0.0.1", port: 8095 });
  assert.deepEqual(run([...URL_FLAG, "--http-listen", "0.0.0.0:9000"]).httpListen, {
    hostname: "0.0.0.0",
    port: 9000,
  });
  assert.deepEqual(run([...URL_FLAG, "--http-listen", "[::1]:0"]).httpListen, { hostname: "::1", port: 0 });
  assert.equal(run(URL_FLAG, { EVENTSINK_HTTP_LISTEN: "off" }).httpListen, undefined);
  for (const bad of ["8095", "localhost:99999", "::1:8095", "host:"]) {
    assert.match(usageError([...URL_FLAG, "--http-listen", bad]), /--http-listen must be host:port/);
  }
});

Deno.test("config: `check` takes the same options and is its own command", () => {
  const parsed = parseCommand(["check", ...URL_FLAG, "--topic", "t"], noEnv);
  assert.equal(parsed.kind, "check");
  assert.equal((parsed as { config: Config }).config.topic, "t");
  assert.match(usageError(["check"]), /--eventstore-url is required/);
  assert.match(usageError([...URL_FLAG, "check"]), /an argument without an option/);
});

Deno.test("config: usage errors never repeat what may be a secret", () => {
  const SECRET = "S3cretValue9";
  const cases: Array<[string[], RegExp]> = [
    [[...URL_FLAG, "--eventstore-headers", `X-Api-Key: ${SECRET}`], /an entry is not name=value/],
    [["--eventstore-url", `http://user:${SECRET}@[bad`], /is not a URL/],
    [
      ["--eventstore-url", `https://user:${SECRET}@eventstore.example`],
      /must not carry a user name or password/,
    ],
    [[...URL_FLAG, "--oauth-token-url", `http://user:${SECRET}@127.0.0.1:1/token`], /user name or password/],
    [[...URL_FLAG, "--topic", "t", SECRET], /an argument without an option/],
  ];
  for (const [args, expected] of cases) {
    const message = usageError(args);
    assert.match(message, expected);
    assert.ok(!message.includes(SECRET), message);
  }
});

Deno.test("config: only http and https URLs", () => {
  assert.match(
    usageError([...URL_FLAG, "--oauth-discovery-url", "file:///etc/passwd"]),
    /--oauth-discovery-url "file:\/\/\/etc\/passwd" must be http or https, not file/,
  );
});

Deno.test("config: NODE_TLS_REJECT_UNAUTHORIZED set (but to 1) refuses to start", () => {
  for (const value of ["0", "false", ""]) {
    assert.match(
      usageError(URL_FLAG, { NODE_TLS_REJECT_UNAUTHORIZED: value }),
      /NODE_TLS_REJECT_UNAUTHORIZED=.* is set/,
    );
  }
  assert.equal(parseCommand(URL_FLAG, (name) => ({ NODE_TLS_REJECT_UNAUTHORIZED: "1" })[name]).kind, "run");
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
