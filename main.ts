import { createAttemptLog } from "./src/attempts.ts";
import { authorized, createTokenSource, type TokenSource } from "./src/auth.ts";
import { formatReport, runChecks } from "./src/check.ts";
import { type Config, describeConfig, parseCommand } from "./src/config.ts";
import { type Credentials, CredentialsError, loadCredentials } from "./src/credentials.ts";
import { createEventStoreClient } from "./src/delivery.ts";
import { createForwarder } from "./src/forward.ts";
import { deadLetterWriter } from "./src/deadletter.ts";
import { probeSearch } from "./src/delivery.ts";
import { createKafkaClient, type KafkaClient } from "./src/kafka.ts";
import { createLogger, type Logger, stderrIsJournal } from "./src/log.ts";
import { type Operations, startOperations } from "./src/operations.ts";
import { createRedactor } from "./src/secrets.ts";
import { createSink, type RejectedHandling } from "./src/sink.ts";
import { sleep } from "./src/sleep.ts";
import { VERSION, VERSIONS, versionText } from "./src/version.ts";

/** Wiring: config → parts → run → exit code. The only place that exits. */
async function main(): Promise<number> {
  const command = parseCommand(Deno.args, (name) => Deno.env.get(name));
  switch (command.kind) {
    case "help":
      console.log(command.text);
      return 0;
    case "version":
      console.log(versionText(VERSIONS));
      return 0;
    case "usage-error":
      console.error(`eventsink: ${command.message}\nRun 'eventsink --help' for the options.`);
      return 2;
  }
  const config = command.config;
  const redactor = createRedactor();
  const journal = stderrIsJournal(Deno.env.get("JOURNAL_STREAM"));
  // `check` writes a report for a person: KafkaJS's connection warnings would only repeat what it says.
  const quiet = command.kind === "check" && config.logLevel !== "debug";
  const level = quiet ? "error" : config.logLevel;
  const log = createLogger({ level, format: config.logFormat, journal, redact: redactor.apply });
  // A replay runs in a group of its own, so the service's committed offsets stay as they are.
  const group = config.fromBeginning ? `${config.group}.replay.${compactTime(new Date())}` : config.group;
  if (command.kind !== "check") {
    log.info(`eventsink ${VERSION} starting`, { ...describeConfig(config), group });
  }

  let credentials: Credentials;
  try {
    credentials = await loadCredentials(config, {
      readTextFile: Deno.readTextFile,
      now: new Date(),
      redactor,
    });
  } catch (error) {
    if (!(error instanceof CredentialsError)) throw error;
    log.error(`Cannot start: ${error.message}`);
    return 2;
  }
  const client = createEventStoreClient(credentials.eventstoreTls, config);
  const tokens = createTokenSource(credentials.eventstoreAuth, {
    timeoutMs: config.requestTimeoutMs,
    client,
    onToken: redactor.addRotating,
  });
  const kafka = createKafkaClient({
    ...config,
    group,
    deadLetterTopic: config.rejected.deadLetterTopic,
    tls: credentials.kafkaTls,
    sasl: credentials.kafkaSasl,
  }, log);
  if (command.kind === "check") return await check(config, { kafka, client, tokens });
  if (tokens && credentials.eventstoreAuth.kind === "oauth2" && !(await firstToken(tokens, log))) return 2;
  const onRejected: RejectedHandling = config.rejected.policy === "dead-letter"
    ? {
      policy: "dead-letter",
      topic: config.rejected.deadLetterTopic,
      write: deadLetterWriter(
        { topic: config.rejected.deadLetterTopic, publish: kafka.publish, policy: config.retry, log, sleep },
        VERSION,
      ),
    }
    : { policy: config.rejected.policy };
  const attempts = createAttemptLog(Date.now);
  const settle = createForwarder(config, log, { tokens, client, observe: attempts.observe });
  const sink = createSink(config, { source: kafka, settle, onRejected, log });
  let operations: Operations;
  try {
    operations = await startOperations(config, {
      sink,
      source: kafka,
      attempts,
      log,
      env: (name) => Deno.env.get(name),
    });
  } catch (error) {
    log.error(`Cannot start: ${(error as Error).message}`);
    return 1;
  }
  // Every file eventsink reads has been read (and the sd_notify socket bound): from here on, before it
  // consumes anything, nothing in this process can read a file.
  Deno.permissions.revokeSync({ name: "read" });
  let signals = 0;
  const onSignal = (name: Deno.Signal) => () => {
    if (++signals > 1) {
      log.warn(`Second ${name}: exiting at once; records not yet committed will be delivered again`);
      Deno.exit(1);
    }
    log.info(`${name} received: finishing deliveries in flight, then stopping`);
    sink.stop();
    void operations.stopping();
  };
  Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));
  Deno.addSignalListener("SIGINT", onSignal("SIGINT"));
  try {
    const { exitCode } = await sink.run();
    return exitCode;
  } catch (error) {
    log.error(`Cannot start: ${(error as Error).message}`);
    return 1;
  } finally {
    await operations.close();
  }
}

/**
 * Gets the first OAuth2 token before consuming: refused credentials end eventsink at once (false); a token
 * endpoint that cannot be reached now is only a warning, as deliveries wait and retry for a token.
 */
async function firstToken(tokens: TokenSource, log: Logger): Promise<boolean> {
  const result = await tokens.token(new AbortController().signal);
  if (result.kind === "config-fault") {
    log.error(`Cannot start: ${result.reason}`);
    return false;
  }
  if (result.kind === "retry") {
    log.warn("No EventStore token yet; deliveries wait for the token endpoint", { reason: result.reason });
  } else {
    log.info("Got an EventStore token");
  }
  return true;
}

/** `eventsink check`: both ends, one report on stdout; 0 when every part passed. */
async function check(
  config: Config,
  ends: { kafka: KafkaClient; client: Deno.HttpClient; tokens: TokenSource | undefined },
): Promise<number> {
  const probe = () =>
    authorized(ends.tokens, (auth) =>
      probeSearch(config.eventstoreUrl, {
        timeoutMs: config.requestTimeoutMs,
        client: ends.client,
        headers: { ...config.eventstoreHeaders, ...auth },
      }), AbortSignal.timeout(config.requestTimeoutMs));
  const results = await runChecks(config, { kafka: ends.kafka.inspect, probeStore: probe });
  await ends.kafka.stop().catch(() => {});
  console.log(formatReport(results));
  return results.every((r) => r.result === "ok") ? 0 : 1;
}

function compactTime(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

Deno.exit(await main());
