/**
 * Benthos as a contender: a tiny build of it (bench/benthos/, pinned by go.mod and go.sum) made once into
 * .cache/benthos/ and made again when its sources change, and its configuration for a run: kafka_franz on
 * the run's topic and fresh group → http_client POSTs to the stand-in, as the other sinks do.
 */
import { fileURLToPath } from "node:url";
import { BENTHOS_VERSION } from "./configs.ts";
import { onCleanUp, type ScriptProcess, spawnProcess } from "./children.ts";
import type { SinkPlace, SinkProcess } from "./sinks.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SOURCE_DIR = `${ROOT}bench/benthos`;
const SOURCES = ["go.mod", "go.sum", "main.go"];
const CACHE_DIR = `${ROOT}.cache/benthos`;
/** The binary every Benthos run starts. */
export const BENTHOS_BINARY = `${CACHE_DIR}/benthos`;
/** Holds the digest of the sources the binary was built from. */
const STAMP = `${CACHE_DIR}/sources.sha256`;
/** Where `go` is looked for when it is not on PATH: the usual place of an install from go.dev. */
const GO_FALLBACK = "/usr/local/go/bin/go";
const TAIL_CHARS = 4_000;

/** The binary, ready, or why there is none (printed as "benthos: skipped (…)"). */
export type BenthosBuild = { kind: "ready"; version: string; built: boolean } | {
  kind: "skipped";
  reason: string;
};

/** Builds the binary unless it is there and made from the current sources; `say` gets progress lines. */
export async function ensureBenthos(say: (line: string) => void, signal: AbortSignal): Promise<BenthosBuild> {
  const digest = await sourceDigest();
  const stamp = await Deno.readTextFile(STAMP).catch(() => "");
  let built = false;
  if (stamp.trim() !== digest || !(await exists(BENTHOS_BINARY))) {
    const go = await findGo();
    if (go === undefined) return { kind: "skipped", reason: "Go is not installed" };
    say(`benthos: building v${BENTHOS_VERSION} from bench/benthos/ with ${go} (once; about 2 minutes)`);
    await Deno.mkdir(CACHE_DIR, { recursive: true });
    const began = Date.now();
    const out = await new Deno.Command(go, {
      args: ["build", "-trimpath", "-buildvcs=false", "-o", `${BENTHOS_BINARY}.new`, "."],
      cwd: SOURCE_DIR,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal,
    }).output();
    signal.throwIfAborted();
    if (!out.success) {
      const error = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ");
      return { kind: "skipped", reason: `go build failed: ${error}` };
    }
    await Deno.rename(`${BENTHOS_BINARY}.new`, BENTHOS_BINARY);
    await Deno.writeTextFile(STAMP, `${digest}\n`);
    say(`benthos: built in ${((Date.now() - began) / 1000).toFixed(0)} s`);
    built = true;
  }
  const version = await binaryVersion();
  if (version !== `v${BENTHOS_VERSION}`) {
    return { kind: "skipped", reason: `${BENTHOS_BINARY} says it is ${version ?? "nothing"}` };
  }
  return { kind: "ready", version, built };
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

async function sourceDigest(): Promise<string> {
  const parts = await Promise.all(SOURCES.map((name) => Deno.readFile(`${SOURCE_DIR}/${name}`)));
  const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length + 1, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length + 1; // a zero between the files
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...hash].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** `go` on PATH, else at {@link GO_FALLBACK}, if either runs. */
async function findGo(): Promise<string | undefined> {
  for (const go of ["go", GO_FALLBACK]) {
    try {
      const out = await new Deno.Command(go, { args: ["version"], stdout: "null", stderr: "null" }).output();
      if (out.success) return go;
    } catch {
      // not there
    }
  }
  return undefined;
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

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}
