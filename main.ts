import { createAttemptLog } from "./src/operations/store_watch.ts";
import { authorized, createTokenSource, type TokenSource } from "./src/delivery/tokens.ts";
import { formatReport, runChecks } from "./src/operations/check.ts";
import { type Config, parseCommand } from "./src/config/parse.ts";
import { describeConfig } from "./src/config/describe.ts";
import { type Credentials, CredentialsError, loadCredentials } from "./src/security/credentials.ts";
import { deadLetterWriter } from "./src/settle/dead_letter.ts";
import { createEventStoreClient, createSender, probeSearch } from "./src/delivery/sender.ts";
import { createDisplay } from "./src/replay/display.ts";
import { createDryRun, DRY_RUN_REJECTED } from "./src/replay/dry_run.ts";
import { createDelivery } from "./src/delivery/deliver.ts";
import { createKafkaClient, type KafkaClient } from "./src/kafka/client.ts";
import { createLogger, type Logger, stderrIsJournal, writeStderrText } from "./src/log.ts";
import { type Operations, startOperations } from "./src/operations/operations.ts";
import { limitRate } from "./src/delivery/rate_limit.ts";
import { createReplay } from "./src/replay/replay.ts";
import { planRun } from "./src/replay/run_plan.ts";
import { createRedactor } from "./src/security/secrets.ts";
import { createSink, type RejectedHandling } from "./src/sink/sink.ts";
import { sleep } from "./src/async.ts";
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
  // A run by hand (--from-*, --dry-run) gets a group of its own, so the service's group stays as it is.
  const plan = planRun(config, new Date());
  // https://no-color.org: any non-empty NO_COLOR turns colour off.
  const colour = (stream: { isTerminal(): boolean }) => stream.isTerminal() && !Deno.env.get("NO_COLOR");
  const display = createDisplay({
    terminal: Deno.stderr.isTerminal(),
    colour: colour(Deno.stderr),
    quiet: config.replay.quiet || !plan.byHand,
    intervalMs: config.replay.progressIntervalMs,
    write: writeStderrText,
    columns: terminalColumns,
  });
  const redactor = createRedactor();
  const journal = stderrIsJournal(Deno.env.get("JOURNAL_STREAM"));
  // `check` writes a report for a person: KafkaJS's connection warnings would only repeat what it says.
  const level = command.kind === "check" && config.logLevel !== "debug" ? "error" : config.logLevel;
  const log = createLogger({
    level,
    format: config.logFormat,
    journal,
    redact: redactor.apply,
    write: display.writeLog,
  });
  if (command.kind === "run") {
    log.info(`eventsink ${VERSION} starting`, { ...describeConfig(config), group: plan.group });
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
  const attempts = createAttemptLog(Date.now);
  const tokens = createTokenSource(credentials.eventstoreAuth, {
    timeoutMs: config.requestTimeoutMs,
    client,
    onToken: (token) => {
      redactor.addRotating(token);
      attempts.tokenObtained();
    },
  });
  const kafka = createKafkaClient({
    ...config,
    group: plan.group,
    deadLetterTopic: config.rejected.deadLetterTopic,
    tls: credentials.kafkaTls,
    sasl: credentials.kafkaSasl,
  }, log);
  if (command.kind === "check") return await check(config, { kafka, client, tokens });
  if (tokens && credentials.eventstoreAuth.kind === "oauth2" && !(await firstToken(tokens, log))) return 2;

  const dryRun = plan.dryRun ? createDryRun(config.eventstoreUrl, log) : undefined;
  const replay = plan.byHand
    ? createReplay(plan, {
      topic: config.topic,
      serviceGroup: config.group,
      deadLetterTopic: config.rejected.deadLetterTopic,
      admin: kafka.replayAdmin(),
      display,
      log,
      print: (text) => console.log(text),
      colour: colour(Deno.stdout),
      now: Date.now,
      largest: dryRun?.largest,
    })
    : undefined;
  const onRejected: RejectedHandling = dryRun
    ? DRY_RUN_REJECTED
    : config.rejected.policy === "dead-letter"
    ? {
      policy: "dead-letter",
      topic: config.rejected.deadLetterTopic,
      write: deadLetterWriter(
        {
          topic: config.rejected.deadLetterTopic,
          publish: kafka.producer.publish,
          policy: config.retry,
          log,
          sleep,
        },
        VERSION,
      ),
    }
    : { policy: config.rejected.policy };
  const deliver = dryRun?.deliver ?? createDelivery(config, {
    log,
    tokens,
    send: createSender(credentials.eventstoreTls, config, client),
    observe: (outcome, durationMs, record) => {
      attempts.observe(outcome, durationMs);
      replay?.observe(outcome, record);
    },
  });
  const settle = config.maxRate === undefined
    ? deliver
    : limitRate(deliver, config.maxRate, { now: Date.now, sleep });
  const sink = createSink(config, {
    consumer: replay?.wrap(kafka.consumer) ?? kafka.consumer,
    partitionStarts: kafka.partitionStarts,
    settle,
    onRejected,
    log,
  });
  let operations: Operations;
  try {
    // A run by hand serves no HTTP endpoint: it would take the service's port.
    operations = await startOperations(
      plan.byHand ? { ...config, httpListen: undefined } : config,
      {
        sink,
        logEndOffsets: kafka.logEndOffsets,
        consumer: kafka.consumer,
        attempts,
        log,
        env: (name) => Deno.env.get(name),
      },
    );
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
    if (replay) return await replay.run(sink);
    const { exitCode } = await sink.run();
    return exitCode;
  } catch (error) {
    log.error(`Cannot start: ${(error as Error).message}`);
    return 1;
  } finally {
    // The sink stopped the consumer; the producer and the admin client are closed here.
    await kafka.close().catch((error) =>
      log.warn("Closing Kafka connections failed", { error: error.message })
    );
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
    authorized(
      ends.tokens,
      (auth) =>
        probeSearch(config.eventstoreUrl, {
          timeoutMs: config.requestTimeoutMs,
          client: ends.client,
          headers: { ...config.eventstoreHeaders, ...auth },
        }),
      AbortSignal.timeout(config.requestTimeoutMs),
    );
  const results = await runChecks(config, { kafka: ends.kafka.inspect, probeStore: probe });
  await ends.kafka.close().catch(() => {});
  console.log(formatReport(results));
  return results.every((r) => r.result === "ok") ? 0 : 1;
}

/** The terminal's width; 80 when stderr is not a terminal. */
function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 80;
  }
}

Deno.exit(await main());
