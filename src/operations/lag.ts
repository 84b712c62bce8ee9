import type { PartitionStatus, SinkStatus } from "../sink/status.ts";
import type { Verdict } from "./health.ts";

/** Where an assigned partition stands, with its lag. */
export interface PartitionProgress {
  partition: number;
  committed: number | undefined;
  /** The log-end offset: the newer of the latest batch's and the latest poll's. */
  logEnd: number | undefined;
  /**
   * Records from the first one not yet accounted for (else the committed offset) to the log end; Kafka's
   * own lag, from the committed offset, trails it by the records accounted for since the last commit.
   */
  lag: number | undefined;
  inFlight: number;
}

/** Adds the log end and the lag to a partition's status; `polledEnd` comes from asking the broker. */
export function partitionProgress(status: PartitionStatus, polledEnd: number | undefined): PartitionProgress {
  const ends = [status.highWatermark, polledEnd].filter((o) => o !== undefined);
  const logEnd = ends.length === 0 ? undefined : Math.max(...ends);
  const position = status.next ?? status.committed;
  return {
    partition: status.partition,
    committed: status.committed,
    logEnd,
    lag: logEnd === undefined || position === undefined ? undefined : Math.max(0, logEnd - position),
    inFlight: status.inFlight,
  };
}

/** The one-line state systemd shows (`systemctl status`, sd_notify STATUS=). */
export function statusLine(
  view: { topic: string; status: SinkStatus; partitions: PartitionProgress[]; ready: Verdict },
): string {
  const { counts, phase } = view.status;
  if (phase === "starting") return "Starting: connecting to Kafka and joining the consumer group";
  const lags = view.partitions.map((p) => p.lag).filter((lag) => lag !== undefined);
  const lag = lags.length === 0 ? "unknown" : String(lags.reduce((a, b) => a + b, 0));
  const tally =
    `${counts.delivered} delivered, ${counts.deadLettered} dead-lettered, ${counts.skipped} skipped` +
    (counts.deleted > 0 ? `, ${counts.deleted} deleted before delivery` : "");
  if (phase !== "consuming") return `Stopping: finishing deliveries in flight; ${tally}`;
  const state = view.ready.ok ? "" : `; not ready: ${view.ready.reason}`;
  return `Consuming ${view.topic} (${view.partitions.length} partitions): ${tally}; lag ${lag}${state}`;
}
