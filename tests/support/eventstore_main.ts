/**
 * Runs the EventStore stand-in on its own, for `make eventstore`, the demo and benchmarks in another process:
 *
 *   deno run --allow-net tests/support/eventstore_main.ts [--port 8080] [--hostname 127.0.0.1]
 *     [--token T] [--latency-ms N]
 *
 * Logs one line per FHIR request (time, method, path, status, message id; never a body or a header, as the
 * messages carry health data) and stops cleanly on SIGINT or SIGTERM. Steer it through /_admin/.
 */

import { parseArgs } from "node:util";
import { type RecordedRequest, startEventStore } from "./eventstore.ts";

const USAGE = "usage: eventstore_main.ts [--port 8080] [--hostname 127.0.0.1] [--token T] [--latency-ms N]";
const STOP_SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];

interface Settings {
  port: number;
  hostname: string;
  token: string | undefined;
  latencyMs: number;
}

async function serve(settings: Settings): Promise<void> {
  const store = await startEventStore({
    port: settings.port,
    hostname: settings.hostname,
    token: settings.token,
    onRequest: (request) => console.log(logLine(request)),
  });
  store.faults.latency(settings.latencyMs);
  const auth = settings.token === undefined ? "no token check" : "bearer token required";
  console.log(`EventStore stand-in listening on ${store.url} (${auth}); admin API at ${store.url}/_admin/`);
  const signal = await nextSignal(STOP_SIGNALS);
  console.log(`${signal}: stopping`);
  await store.close();
}

function settingsOrExit(args: string[]): Settings {
  try {
    return parseSettings(args);
  } catch (error) {
    console.error(`eventstore: ${(error as Error).message}\n${USAGE}`);
    return Deno.exit(2);
  }
}

function parseSettings(args: string[]): Settings {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: "string", default: "8080" },
      hostname: { type: "string", default: "127.0.0.1" },
      token: { type: "string" },
      "latency-ms": { type: "string", default: "0" },
    },
    strict: true,
    allowPositionals: false,
  });
  return {
    port: wholeNumber(values.port, "--port"),
    hostname: values.hostname,
    token: values.token,
    latencyMs: wholeNumber(values["latency-ms"], "--latency-ms"),
  };
}

function wholeNumber(raw: string, flag: string): number {
  if (!/^\d+$/.test(raw)) throw new RangeError(`${flag} must be a whole number, not ${raw}`);
  return Number(raw);
}

function logLine(request: RecordedRequest): string {
  const outcome = request.dropped ? "dropped" : String(request.status);
  return [request.receivedAt.toISOString(), request.method, request.path, outcome, request.messageId ?? "-"]
    .join(" ");
}

function nextSignal(signals: Deno.Signal[]): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    const listeners = new Map<Deno.Signal, () => void>();
    for (const signal of signals) {
      listeners.set(signal, () => {
        // Listeners left behind would keep the process alive after the store closed.
        for (const [other, listener] of listeners) Deno.removeSignalListener(other, listener);
        resolve(signal);
      });
    }
    for (const [signal, listener] of listeners) Deno.addSignalListener(signal, listener);
  });
}

if (import.meta.main) {
  await serve(settingsOrExit(Deno.args)).catch((error: Error) => {
    console.error(`eventstore: ${error.message}`);
    Deno.exit(1);
  });
}
