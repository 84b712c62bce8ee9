import { describeConfig, parseCommand } from "./src/config.ts";
import { createDisplay } from "./src/display.ts";
import { createDryRun, DRY_RUN_REJECTED } from "./src/dry_run.ts";
import { createForwarder } from "./src/forward.ts";
import { deadLetterWriter } from "./src/deadletter.ts";
import { createKafkaClient } from "./src/kafka.ts";
import { createLogger, writeStderrText } from "./src/log.ts";
import { limitRate } from "./src/rate_limit.ts";
import { createReplay } from "./src/replay.ts";
import { planRun } from "./src/run_plan.ts";
import { createSink, type RejectedHandling } from "./src/sink.ts";
import { sleep } from "./src/sleep.ts";
import { VERSION } from "./src/version.ts";

/** Wiring: config → parts → run → exit code. The only place that exits. */
async function main(): Promise<number> {
  const command = parseCommand(Deno.args, (name) => Deno.env.get(name));
  switch (command.kind) {
    case "help":
      console.log(command.text);
      return 0;
    case "version":
      console.log(`eventsink ${VERSION}`);
      return 0;
    case "usage-error":
      console.error(`eventsink: ${command.message}\nRun 'eventsink --help' for the options.`);
      return 2;
  }
  const config = command.config;
  // A replay runs in a group of its own, so the service's committed offsets stay as they are.
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
  const log = createLogger({ level: config.logLevel, format: config.logFormat, write: display.writeLog });
  log.info(`eventsink ${VERSION} starting`, { ...describeConfig(config), group: plan.group });

  const kafka = createKafkaClient(
    { ...config, group: plan.group, deadLetterTopic: config.rejected.deadLetterTopic },
    log,
  );
  const dryRun = plan.dryRun ? createDryRun(config.eventstoreUrl, log) : undefined;
  const replay = plan.byHand
    ? createReplay(plan, {
      topic: config.topic,
      serviceGroup: config.group,
      deadLetterTopic: config.rejected.deadLetterTopic,
      admin: kafka.offsetAdmin(),
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
        { topic: config.rejected.deadLetterTopic, publish: kafka.publish, policy: config.retry, log, sleep },
        VERSION,
      ),
    }
    : { policy: config.rejected.policy };
  const deliver = dryRun?.settle ?? createForwarder(config, log, replay?.observe);
  const settle = config.maxRate === undefined
    ? deliver
    : limitRate(deliver, config.maxRate, { now: Date.now, sleep });
  const sink = createSink(config, { source: replay?.wrap(kafka) ?? kafka, settle, onRejected, log });
  let signals = 0;
  const onSignal = (name: Deno.Signal) => () => {
    if (++signals > 1) {
      log.warn(`Second ${name}: exiting at once; records not yet committed will be delivered again`);
      Deno.exit(1);
    }
    log.info(`${name} received: finishing deliveries in flight, then stopping`);
    sink.stop();
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
  }
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
