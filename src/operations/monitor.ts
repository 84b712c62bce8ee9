import type { AttemptLog } from "./store_watch.ts";
import type { Outcome } from "../delivery/outcome.ts";
import { renderExposition } from "./exposition.ts";
import { liveness, readiness, type Verdict } from "./health.ts";
import type { KafkaClient } from "../kafka/client.ts";
import type { Consumer } from "../kafka/consumer.ts";
import type { Logger } from "../log.ts";
import { metricFamilies } from "./metrics.ts";
import { type PartitionProgress, partitionProgress, statusLine } from "./lag.ts";
import type { Sink, SinkPhase } from "../sink/status.ts";
import type { Versions } from "../version.ts";

/** How often the log-end offsets are asked for, so that lag grows while a partition waits (paused). */
export const LOG_END_POLL_MS = 5_000;

/**
 * While no delivery asked the EventStore anything for this long, it is probed this often, so that
 * readiness falls within a minute of the store going away from an idle sink, and rises when it is back.
 */
export const IDLE_PROBE_MS = 30_000;

/** One view of a running eventsink for /healthz, /readyz, /metrics and systemd's STATUS= line. */
export interface Monitor {
  phase(): SinkPhase;
  liveness(): Verdict;
  readiness(): Verdict;
  statusLine(): string;
  /** The Prometheus text of /metrics. */
  metrics(): string;
  /** Stops asking for log-end offsets. */
  close(): void;
}

/** What the monitor reads; it changes nothing. */
export interface MonitorDeps {
  topic: string;
  sink: Pick<Sink, "status">;
  logEndOffsets: KafkaClient["logEndOffsets"];
  consumer: Pick<Consumer, "lastActivity">;
  attempts: AttemptLog;
  /** Asks the EventStore something light with eventsink's credentials (see connectEventStore). */
  probe: () => Promise<Outcome>;
  versions: Versions;
  log: Logger;
  now: () => number;
}

/** Creates the monitor and starts polling log-end offsets while the sink consumes. */
export function createMonitor(deps: MonitorDeps): Monitor {
  const { topic, sink, consumer, attempts, now } = deps;
  let logEnds = new Map<number, number>();
  let polling = false;
  const poll = setInterval(async () => {
    if (polling || sink.status().phase !== "consuming") return;
    polling = true;
    try {
      logEnds = await deps.logEndOffsets(topic);
    } catch (error) {
      deps.log.debug("Cannot read log-end offsets for the lag", { error: (error as Error).message });
    } finally {
      polling = false;
    }
  }, LOG_END_POLL_MS);
  const idleProbe = setInterval(async () => {
    if (sink.status().phase !== "consuming" || attempts.quietFor() < IDLE_PROBE_MS) return;
    attempts.probed(await deps.probe().catch((error) => ({ kind: "retry", reason: String(error) }) as const));
  }, IDLE_PROBE_MS);

  const progress = (): PartitionProgress[] =>
    sink.status().partitions.map((p) => partitionProgress(p, logEnds.get(p.partition)));
  const ready = (): Verdict => {
    const status = sink.status();
    return readiness({
      phase: status.phase,
      topic,
      partitions: status.partitions.length,
      store: attempts.health(),
    });
  };
  return {
    phase: () => sink.status().phase,
    liveness: () => liveness({ phase: sink.status().phase, lastActivity: consumer.lastActivity() }, now()),
    readiness: ready,
    statusLine: () => statusLine({ topic, status: sink.status(), partitions: progress(), ready: ready() }),
    metrics: () =>
      renderExposition(metricFamilies({
        topic,
        counts: sink.status().counts,
        partitions: progress(),
        attempts: attempts.stats(),
        ready: ready().ok,
        versions: deps.versions,
      })),
    close: () => {
      clearInterval(poll);
      clearInterval(idleProbe);
    },
  };
}
