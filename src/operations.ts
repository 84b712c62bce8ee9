import type { AttemptLog } from "./attempts.ts";
import { type Config, formatAddress } from "./config.ts";
import { serveEndpoints } from "./http.ts";
import type { KafkaClient } from "./kafka.ts";
import type { Logger } from "./log.ts";
import { createMonitor } from "./monitor.ts";
import type { Sink } from "./sink.ts";
import { VERSIONS } from "./version.ts";

/** The operational side of a running sink: the HTTP endpoint. */
export interface Operations {
  /** Closes the endpoint. */
  close(): Promise<void>;
}

/**
 * Starts serving /healthz, /readyz and /metrics (unless --http-listen off). Throws when the endpoint
 * cannot listen.
 */
export function startOperations(
  config: Config,
  deps: {
    sink: Pick<Sink, "status">;
    source: KafkaClient;
    attempts: AttemptLog;
    log: Logger;
  },
): Operations {
  const { log } = deps;
  const monitor = createMonitor({ ...deps, topic: config.topic, versions: VERSIONS, now: Date.now });
  let server: Deno.HttpServer | undefined;
  try {
    if (config.httpListen) server = serveEndpoints(config.httpListen, monitor, log);
  } catch (error) {
    monitor.close();
    throw new Error(`cannot listen on ${formatAddress(config.httpListen!)}: ${(error as Error).message}`);
  }
  return {
    async close() {
      monitor.close();
      await server?.shutdown();
    },
  };
}
