import { sleep } from "./src/async.ts";
import { describeConfig } from "./src/config/describe.ts";
import { type Config, parseCommand } from "./src/config/parse.ts";
import { connectEventStore, createDelivery } from "./src/delivery/deliver.ts";
import { limitRate } from "./src/delivery/rate_limit.ts";
import { firstToken } from "./src/delivery/tokens.ts";
import { createKafkaClient, type KafkaClient, kafkaOptions } from "./src/kafka/client.ts";
import { createLogger, type Logger, stderrIsJournal } from "./src/log.ts";
import { createRedactor, type Present, presenter, presentLines } from "./src/outward.ts";
import { checkEnds } from "./src/operations/check.ts";
import { startOperations } from "./src/operations/operations.ts";
import { listenForSignals, type Signals } from "./src/operations/signals.ts";
import { type AttemptLog, createAttemptLog } from "./src/operations/store_watch.ts";
import type { Display } from "./src/replay/display.ts";
import { createDryRun, DRY_RUN_REJECTED } from "./src/replay/dry_run.ts";
import { createReplay } from "./src/replay/replay.ts";
import { planRun, type RunPlan } from "./src/replay/run_plan.ts";
import { colourOn, stderrDisplay } from "./src/replay/terminal.ts";
import { CredentialsError, loadCredentials } from "./src/security/credentials.ts";
import { readStartupFile } from "./src/security/secrets.ts";
import { createSettle, rejectedHandling } from "./src/settle/settle.ts";
import { createSink } from "./src/sink/sink.ts";
import { VERSION, VERSIONS, versionText } from "./src/version.ts";

const USAGE_HINT = "Run 'eventsink --help' for the options.";

/** Wiring: config → parts → run → exit code. The only place that exits. */
async function main(): Promise<number> {
  const command = parseCommand(Deno.args, (name) => Deno.env.get(name));
  const redactor = createRedactor();
  const present = presenter(redactor);
  switch (command.kind) {
    case "help":
    case "version":
      console.log(command.kind === "help" ? command.text : versionText(VERSIONS));
      return 0;
    case "usage-error":
      console.error(presentLines(present, `eventsink: ${command.message}\n${USAGE_HINT}`));
      return 2;
  }
  const config = command.config;
  // A run by hand (--from-*, --dry-run) gets a group of its own, so the service's group stays as it is.
  const plan = planRun(config, new Date());
  const display = stderrDisplay(config.replay, plan.byHand, Deno.env.get("NO_COLOR"));
  const log = createLogger({
    // `check` writes a report for a person: KafkaJS's connection warnings would only repeat what it says.
    level: command.kind === "check" && config.logLevel !== "debug" ? "error" : config.logLevel,
    format: config.logFormat,
    journal: stderrIsJournal(Deno.env.get("JOURNAL_STREAM")),
    present,
    write: display.writeLog,
  });
  // A check or a run by hand cut short did not do its job; a service stopped while starting lost nothing.
  const startupExitCode = command.kind === "run" && !plan.byHand ? 0 : 1;
  const signals = listenForSignals({ log, exit: Deno.exit, startupExitCode });
  if (command.kind === "run") {
    log.info(`eventsink ${VERSION} starting`, { ...describeConfig(config), group: plan.group });
  }
  const files = { readTextFile: readStartupFile, now: new Date(), redactor };
  const credentials = await loadCredentials(config, files).catch((error) => {
    if (!(error instanceof CredentialsError)) throw error;
    error.message.split("\n").forEach((problem) => log.error(`Cannot start: ${problem}`));
  });
  if (credentials === undefined) return 2;
  const attempts = createAttemptLog(Date.now);
  const store = connectEventStore(config, credentials, (token) => {
    redactor.addRotating(token);
    attempts.tokenObtained();
  });
  const kafka = createKafkaClient(kafkaOptions(config, plan.group, credentials), log);
  if (command.kind === "check") {
    const { report, passed } = await checkEnds(config, { ...store, kafka: kafka.inspect });
    await kafka.close().catch(() => {});
    console.log(presentLines(present, report));
    return passed ? 0 : 1;
  }
  const { tokens } = store;
  if (tokens && credentials.eventstoreAuth.kind === "oauth2" && !(await firstToken(tokens, log))) return 2;
  return await run(config, plan, { log, display, kafka, store, attempts, present, signals });
}

/** The run: the sink (inside a replay, for a run by hand) with operations beside it, until stopped. */
async function run(
  config: Config,
  plan: RunPlan,
  { log, display, kafka, store, attempts, present, signals }: {
    log: Logger;
    signals: Signals;
    present: Present;
    display: Display;
    kafka: KafkaClient;
    store: ReturnType<typeof connectEventStore>;
    attempts: AttemptLog;
  },
): Promise<number> {
  const dryRun = plan.dryRun ? createDryRun(config.eventstoreUrl, log) : undefined;
  const replay = plan.byHand
    ? createReplay(plan, {
      topic: config.topic,
      serviceGroup: config.group,
      deadLetterTopic: config.rejected.deadLetterTopic,
      admin: kafka.replayAdmin(),
      display,
      log,
      print: (text) => console.log(presentLines(present, text)),
      colour: colourOn(Deno.stdout, Deno.env.get("NO_COLOR")),
      now: Date.now,
      largest: dryRun?.largest,
    })
    : undefined;
  const deliver = dryRun?.deliver ?? createDelivery(config, {
    ...store,
    log,
    onPoison: attempts.poisoned,
    observe: (outcome, durationMs, record) => {
      attempts.observe(outcome, durationMs);
      replay?.observe(outcome, record);
    },
  });
  const onRejected = dryRun
    ? DRY_RUN_REJECTED
    : rejectedHandling(config, { publish: kafka.producer.publish, log, sleep, version: VERSION, present });
  const sink = createSink(config, {
    consumer: replay?.wrap(kafka.consumer) ?? kafka.consumer,
    partitionStarts: kafka.partitionStarts,
    deliver: limitRate(deliver, config.maxRate, { now: Date.now, sleep }),
    settle: createSettle(onRejected, log),
    log,
  });
  // A run by hand serves no HTTP endpoint: it would take the service's port.
  const operations = await startOperations(plan.byHand ? { ...config, httpListen: undefined } : config, {
    sink,
    logEndOffsets: kafka.logEndOffsets,
    consumer: kafka.consumer,
    attempts,
    probe: store.evidence.probe,
    log,
    env: (name) => Deno.env.get(name),
  }).catch((error) => log.error(`Cannot start: ${(error as Error).message}`));
  if (operations === undefined) return 1;
  // Every file is read and the sd_notify socket bound: before consuming, give up reading files for good.
  Deno.permissions.revokeSync({ name: "read" });
  signals.running((now) => {
    sink.stop({ now });
    if (!now) replay?.stopping();
    void operations.stopping();
  });
  try {
    return replay ? await replay.run(sink) : (await sink.run()).exitCode;
  } catch (error) {
    log.error(`Cannot start: ${(error as Error).message}`);
    return 1;
  } finally {
    // The sink stopped the consumer; the producer and the admin client are closed here.
    await kafka.close().catch((e) => log.warn("Closing Kafka connections failed", { error: e.message }));
    await operations.close();
  }
}

Deno.exit(await main());
