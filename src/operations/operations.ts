import type { AttemptLog } from "./store_watch.ts";
import type { Outcome } from "../delivery/outcome.ts";
import { formatAddress, type ListenAddress, serveEndpoints } from "./endpoints.ts";
import type { KafkaClient } from "../kafka/client.ts";
import type { Consumer } from "../kafka/consumer.ts";
import type { Logger } from "../log.ts";
import { createMonitor } from "./monitor.ts";
import { notifyService, openNotifier, watchdogInterval } from "./systemd.ts";
import type { Sink } from "../sink/status.ts";
import { VERSIONS } from "../version.ts";

/** The operational side of a running sink: the HTTP endpoint and systemd's notifications. */
export interface Operations {
  /** Tells systemd that eventsink is stopping (once). */
  stopping(): Promise<void>;
  /** Tells systemd it stops, if not yet told, and closes the endpoint and the notify socket. */
  close(): Promise<void>;
}

/** The options the operational side reads. */
export interface OperationsOptions {
  /** The topic consumed: the lag is measured against its log-end offsets. */
  topic: string;
  /** Undefined: no HTTP endpoint (--http-listen off, and a run by hand). */
  httpListen: ListenAddress | undefined;
}

/**
 * Starts serving /healthz, /readyz and /metrics (unless --http-listen off) and, under systemd, notifying
 * it (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID from `env`). Throws when the endpoint cannot listen.
 */
export async function startOperations(
  config: OperationsOptions,
  deps: {
    sink: Pick<Sink, "status">;
    logEndOffsets: KafkaClient["logEndOffsets"];
    consumer: Pick<Consumer, "lastActivity">;
    attempts: AttemptLog;
    probe: () => Promise<Outcome>;
    log: Logger;
    env: (name: string) => string | undefined;
  },
): Promise<Operations> {
  const { log, env } = deps;
  const monitor = createMonitor({ ...deps, topic: config.topic, versions: VERSIONS, now: Date.now });
  let server: Deno.HttpServer | undefined;
  try {
    if (config.httpListen) server = serveEndpoints(config.httpListen, monitor, log);
  } catch (error) {
    monitor.close();
    throw new Error(`cannot listen on ${formatAddress(config.httpListen!)}: ${(error as Error).message}`);
  }
  const notifier = await openNotifier(env("NOTIFY_SOCKET"), log);
  const watchdogMs = watchdogInterval({ usec: env("WATCHDOG_USEC"), pid: env("WATCHDOG_PID") }, Deno.pid);
  const service = notifier && notifyService(notifier, { monitor, watchdogMs, now: Date.now });
  return {
    stopping: async () => await service?.stopping(),
    async close() {
      await service?.stopping();
      monitor.close();
      await server?.shutdown();
      await service?.close();
    },
  };
}
