/**
 * Runs eventsink as a user would: `deno run` on main.ts with exactly the permission set of
 * eventsink.permissions (the same flags `make build` bakes into the binary), JSON logs on stderr.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describeHits, OUTPUT_DIR, scanDir, scanText } from "./secret_scan.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** One JSON log line of eventsink. */
export type LogLine = { time: string; level: string; msg: string } & Record<string, unknown>;

/** A running eventsink process. */
export interface EventsinkProcess {
  readonly pid: number;
  /** Every log line so far, parsed. */
  readonly lines: LogLine[];
  /** Everything printed so far on stdout and stderr, as text (for checks that nothing leaked). */
  output(): string;
  /** Resolves with the first log line matching, or rejects naming what was seen. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  signal(signal: Deno.Signal): void;
  /** Resolves with the exit code; rejects if the process has not exited within the timeout. */
  exited(timeoutMs?: number): Promise<number>;
  /** Kills it (SIGKILL) if it still runs and waits for it: for `finally` blocks. */
  close(): Promise<void>;
}

/** The output of every eventsink this test module started, for checks that nothing secret was printed. */
const everyOutput: Array<() => string> = [];

/** Everything every eventsink started by this test module printed so far, on stdout and stderr. */
export function everythingPrinted(): string {
  return everyOutput.map((output) => output()).join("\n");
}

/**
 * Fails when `printed` (by default everything an eventsink of this module printed) holds one of `secrets`
 * in any form (see secretForms in secret_scan.ts); the failure names each secret by its first characters only.
 */
export function assertNoSecretPrinted(secrets: Iterable<string>, printed = everythingPrinted()): void {
  if (printed.length === 0) throw new Error("no eventsink output to check");
  const hits = scanText(printed, new Set([...secrets].filter((secret) => secret.length > 0)));
  if (hits.length > 0) {
    const found = new Set(hits.map((hit) => hit.secret));
    throw new Error(`eventsink printed ${found.size} secret(s): ${describeHits(hits)}`);
  }
}

/** The permission flags from eventsink.permissions. */
export async function permissionFlags(): Promise<string[]> {
  const text = await Deno.readTextFile(`${ROOT}eventsink.permissions`);
  return text.split("\n").map((line) => line.trim()).filter((line) => line.startsWith("--"));
}

/** Options of a test run: the usual flags are given, `args` adds or overrides. */
export interface SpawnOptions {
  bootstrap: string;
  topic: string;
  group: string;
  /** The EventStore (a stand-in) eventsink posts to. */
  store: { url: string };
  args?: string[];
  env?: Record<string, string>;
  /**
   * `--ordering`; default partition, as most tests assert the offset order of what was posted; null: none
   * given, so eventsink's own default (message) applies.
   */
  ordering?: string | null;
}

/** Starts eventsink with JSON debug logs and fast retries, as the tests want it (see SpawnOptions.ordering). */
export async function spawnEventsink(options: SpawnOptions): Promise<EventsinkProcess> {
  const ordering = options.ordering === null ? [] : ["--ordering", options.ordering ?? "partition"];
  const args = [
    "run",
    "--frozen",
    ...(await permissionFlags()),
    `${ROOT}main.ts`,
    "--brokers",
    options.bootstrap,
    "--topic",
    options.topic,
    "--group",
    options.group,
    "--eventstore-url",
    options.store.url,
    "--log-format",
    "json",
    "--log-level",
    "debug",
    "--retry-initial",
    "100ms",
    "--retry-max",
    "1s",
    // A free port each: processes of parallel runs must not meet on the default one.
    "--http-listen",
    "127.0.0.1:0",
    ...ordering,
    ...(options.args ?? []),
  ];
  return spawnWith(args, options.env ?? {});
}

/** Starts `deno run <permissions> main.ts <args>` with nothing else added (for usage tests). */
export async function spawnRaw(args: string[], env: Record<string, string> = {}): Promise<EventsinkProcess> {
  return spawnWith(
    ["run", "--frozen", ...(await permissionFlags()), `${ROOT}main.ts`, ...args],
    { EVENTSINK_HTTP_LISTEN: "127.0.0.1:0", ...env },
  );
}

/** Runs `eventsink check` against a pipeline's broker, topic, group and stand-in: its exit code and output. */
export async function runCheck(
  p: { bootstrap: string; topic: string; group: string; store: { url: string } },
): Promise<{ code: number; output: string }> {
  const args = [
    "--brokers",
    p.bootstrap,
    "--topic",
    p.topic,
    "--group",
    p.group,
    "--eventstore-url",
    p.store.url,
  ];
  const check = await spawnRaw(["check", ...args]);
  try {
    return { code: await check.exited(60_000), output: check.output() };
  } finally {
    await check.close();
  }
}

/** The base URL of a process's HTTP endpoint, from its "HTTP endpoint listening" line (JSON logs). */
export async function endpointUrl(process: EventsinkProcess): Promise<string> {
  const line = await process.waitForLog((l) => l.msg === "HTTP endpoint listening");
  return `http://${line.hostname}:${line.port}`;
}

function spawnWith(args: string[], env: Record<string, string>): EventsinkProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    // Only what Deno itself needs is inherited: a KAFKA_BROKERS in the tester's shell must not leak in.
    env: { ...inherited(["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME"]), NO_COLOR: "1", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    cwd: ROOT,
  }).spawn();
  const lines: LogLine[] = [];
  const chunks: string[] = [];
  const waiters = new Set<() => void>();
  const collect = async (stream: ReadableStream<Uint8Array>, parse: boolean) => {
    let pending = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      chunks.push(text);
      pending += text;
      const parts = pending.split("\n");
      pending = parts.pop()!;
      if (parse) { for (const part of parts) lines.push(parseLine(part)); }
      for (const wake of waiters) wake();
    }
  };
  const readers = Promise.all([collect(child.stdout, false), collect(child.stderr, true)]);
  const status = child.status.then(async (s) => {
    await readers;
    for (const wake of waiters) wake();
    await keepOutput(child.pid, chunks.join("")).catch((error) =>
      console.error(`cannot keep the output of eventsink ${child.pid} for the secret scan: ${error}`)
    );
    return s.code;
  });
  let exitedCode: number | undefined;
  status.then((code) => (exitedCode = code));

  const process: EventsinkProcess = {
    pid: child.pid,
    lines,
    output: () => chunks.join(""),
    waitForLog(match, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (found) finish(() => resolve(found));
          else if (exitedCode !== undefined) {
            finish(() =>
              reject(new Error(`eventsink exited (${exitedCode}) before the log line came:\n${tail()}`))
            );
          }
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`log line not seen within ${timeoutMs} ms:\n${tail()}`))),
          timeoutMs,
        );
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    signal: (signal) => child.kill(signal),
    async exited(timeoutMs = 60_000) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`eventsink still running after ${timeoutMs} ms:\n${tail()}`)),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([status, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      if (exitedCode === undefined) {
        try {
          child.kill("SIGKILL");
        } catch {
          // already gone
        }
      }
      await status;
    },
  };
  const tail = () => process.output().split("\n").slice(-40).join("\n");
  everyOutput.push(process.output);
  return process;
}

/** Keeps a finished process's whole output in the run's scan directory, for tests/run.ts to scan. */
async function keepOutput(pid: number, output: string): Promise<void> {
  const dir = scanDir();
  if (dir === undefined) return;
  const outputs = join(dir, OUTPUT_DIR);
  await Deno.mkdir(outputs, { recursive: true });
  // Appended: should a pid come round again in one run, both outputs are kept.
  await Deno.writeTextFile(join(outputs, `${pid}.log`), output, { append: true });
}

function inherited(names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => {
    const value = Deno.env.get(name);
    return value === undefined ? [] : [[name, value]];
  }));
}

function parseLine(text: string): LogLine {
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && typeof parsed.msg === "string") return parsed;
  } catch {
    // not one of our JSON lines: kept as a raw line
  }
  return { time: "", level: "raw", msg: text };
}
