import { createAttemptLog } from "./src/attempts.ts";
import { formatReport, runChecks } from "./src/check.ts";
import { type Config, describeConfig, parseCommand } from "./src/config.ts";
import { createForwarder } from "./src/forward.ts";
import { deadLetterWriter } from "./src/deadletter.ts";
import { probeSearch } from "./src/delivery.ts";
import { createKafkaClient } from "./src/kafka.ts";
import { createLogger, type Logger, stderrIsJournal } from "./src/log.ts";
import { type Operations, startOperations } from "./src/operations.ts";
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
  const journal = stderrIsJournal(Deno.env.get("JOURNAL_STREAM"));
  if (command.kind === "check") {
    // A report for a person: KafkaJS's connection warnings would only repeat what the report says.
    const level = config.logLevel === "debug" ? "debug" : "error";
    return await check(config, createLogger({ level, format: config.logFormat, journal }));
  }
  const log = createLogger({ level: config.logLevel, format: config.logFormat, journal });
  // A replay runs in a group of its own, so the service's committed offsets stay as they are.
  const group = config.fromBeginning ? `${config.group}.replay.${compactTime(new Date())}` : config.group;
  log.info(`eventsink ${VERSION} starting`, { ...describeConfig(config), group });

  const kafka = createKafkaClient(
    { ...config, group, deadLetterTopic: config.rejected.deadLetterTopic },
    log,
  );
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
  const settle = createForwarder(config, log, attempts.observe);
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

/** `eventsink check`: both ends, one report on stdout; 0 when every part passed. */
async function check(config: Config, log: Logger): Promise<number> {
  const kafka = createKafkaClient(
    { ...config, deadLetterTopic: config.rejected.deadLetterTopic },
    log,
  );
  const results = await runChecks(config, {
    kafka: kafka.inspect,
    probeStore: () => probeSearch(config.eventstoreUrl, { timeoutMs: config.requestTimeoutMs }),
  });
  await kafka.stop().catch(() => {});
  console.log(formatReport(results));
  return results.every((r) => r.result === "ok") ? 0 : 1;
}

function compactTime(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

Deno.exit(await main());
