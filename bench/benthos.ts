/**
 * Benthos as a contender: a tiny build of it (bench/benthos/, pinned by go.mod and go.sum) made once into
 * .cache/benthos/ and made again when its sources change, and its configuration for a run: kafka_franz on
 * the run's topic and fresh group → http_client POSTs to the stand-in, as the other sinks do.
 */
import { BENTHOS_VERSION } from "./configs.ts";
import { onCleanUp, type ScriptProcess, spawnProcess } from "./children.ts";
import { binaryOf, ensureGoProgram } from "./gobuild.ts";
import type { SinkPlace, SinkProcess } from "./sinks.ts";

/** The binary every Benthos run starts. */
export const BENTHOS_BINARY = binaryOf("benthos");
const TAIL_CHARS = 4_000;

/** The binary, ready, or why there is none (printed as "benthos: skipped (…)"). */
export type BenthosBuild = { kind: "ready"; version: string; built: boolean } | {
  kind: "skipped";
  reason: string;
};

/** Builds the binary unless it is there and made from the current sources; `say` gets progress lines. */
export async function ensureBenthos(say: (line: string) => void, signal: AbortSignal): Promise<BenthosBuild> {
  const build = await ensureGoProgram(
    {
      name: "benthos",
      sources: ["go.mod", "go.sum", "main.go"],
      buildNote: `v${BENTHOS_VERSION}, once; about 2 minutes`,
    },
    say,
    signal,
  );
  if (build.kind === "skipped") return build;
  const version = await binaryVersion();
  if (version !== `v${BENTHOS_VERSION}`) {
    return { kind: "skipped", reason: `${BENTHOS_BINARY} says it is ${version ?? "nothing"}` };
  }
  return { kind: "ready", version, built: build.built };
}

/** The configuration of one run, as JSON (which is YAML too). Pure. */
export function benthosConfig(place: SinkPlace, maxInFlight: number): Record<string, unknown> {
  return {
    // Its HTTP server (metrics, ping) as it comes, on a free port: parallel runs must not meet on 4195.
    http: { address: "127.0.0.1:0" },
    logger: { level: "WARN", format: "logfmt" },
    input: {
      kafka_franz: {
        seed_brokers: place.bootstrap.split(","),
        topics: [place.topic],
        consumer_group: place.group,
        start_from_oldest: true,
      },
    },
    output: {
      http_client: {
        url: `${place.url}/fhir/4.0/$process-message`,
        verb: "POST",
        headers: { "Content-Type": "application/fhir+json" },
        max_in_flight: maxInFlight,
      },
    },
  };
}

/** Starts Benthos on `place` with `maxInFlight` POSTs at a time; its config file goes when it is closed. */
export async function startBenthos(place: SinkPlace, maxInFlight: number): Promise<SinkProcess> {
  const config = await Deno.makeTempFile({ prefix: "eventsink-bench-benthos-", suffix: ".yaml" });
  const removeConfig = onCleanUp(() => Deno.remove(config).catch(() => {}));
  await Deno.writeTextFile(config, JSON.stringify(benthosConfig(place, maxInFlight), null, 2));
  // Benthos logs on stdout; its lines are kept for error reports.
  let output = "";
  const process: ScriptProcess = spawnProcess(
    "benthos",
    { path: BENTHOS_BINARY, args: ["-c", config] },
    (line) => (output = `${output}${line}\n`.slice(-TAIL_CHARS)),
  );
  process.firstLine.then((line) => (output = `${line}\n${output}`), () => {});
  return {
    pid: process.pid,
    describe: () => `${output}${process.stderrTail()}`.split("\n").slice(-15).join("\n"),
    close: async () => {
      await process.close();
      await Deno.remove(config).catch(() => {});
      removeConfig();
    },
  };
}

/** What `benthos --version` says ("Version: v4.27.0"), or undefined. */
async function binaryVersion(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(BENTHOS_BINARY, {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    return /Version:\s*(\S+)/.exec(new TextDecoder().decode(out.stdout))?.[1];
  } catch {
    return undefined;
  }
}
