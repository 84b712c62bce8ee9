/**
 * Java programs from Maven Central for the tests (the Kafka broker, the OAuth2 server): fetching their
 * jars once into `.cache/`, running their tools, and running servers that die with the test process.
 */
import { join } from "node:path";

/** Short-lived JVMs (storage format, ConsumerGroupCommand) start faster with C1 only and a small heap. */
export const TOOL_JVM_ARGS = ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];

// Polls until the owning process is gone, then takes the server (and its temp dir) with it.
// It ignores INT/TERM so that Ctrl-C on the terminal's process group does not end it before the server.
const WATCHDOG_SCRIPT = `trap '' INT TERM HUP
while kill -0 "$1" 2>/dev/null; do
  kill -0 "$2" 2>/dev/null || exit 0
  sleep 1
done
kill -9 "$2" 2>/dev/null
[ -n "$3" ] && rm -rf "$3"
exit 0`;

/** What {@link ensureMavenJars} fetches. */
export interface MavenJars {
  /** A pom whose runtime dependencies are the jars wanted. */
  pom: string;
  /** Cache directory: the jars go to `<dir>/libs`. */
  dir: string;
  /** Extra Maven arguments, e.g. `-Dkafka.version=4.4.0`. */
  args?: string[];
  /** What the jars are, for error messages ("Kafka 4.4.0"). */
  what: string;
}

/**
 * Makes sure the runtime dependencies of `pom` are in `<dir>/libs`, running Maven only when that cache is
 * missing, incomplete or from another pom. Returns the libs dir.
 */
export async function ensureMavenJars(jars: MavenJars): Promise<string> {
  const libs = join(jars.dir, "libs");
  const marker = join(jars.dir, "complete");
  const pomHash = await sha256Hex(await Deno.readFile(jars.pom));
  if ((await readTextIfExists(marker)) === pomHash) return libs;
  await Deno.mkdir(jars.dir, { recursive: true });
  // Download next to the cache and rename, so an interrupted run never leaves a half-filled libs dir.
  const download = await Deno.makeTempDir({ dir: jars.dir, prefix: "download-" });
  const args = ["-q", "-B", "-f", jars.pom, "dependency:copy-dependencies", ...(jars.args ?? [])];
  args.push("-DincludeScope=runtime", `-DoutputDirectory=${download}`);
  const result = await runTool("mvn", args, `Maven (mvn) is needed to fetch the ${jars.what} jars`);
  if (result.code !== 0) {
    await Deno.remove(download, { recursive: true });
    // Maven 3.8 still writes a colour reset in batch mode.
    const output = result.output.replaceAll("\x1b[0m", "");
    throw new Error(`mvn could not fetch ${jars.what} (exit ${result.code}):\n${output}`);
  }
  await Deno.remove(marker).catch(ignoreNotFound);
  await Deno.remove(libs, { recursive: true }).catch(ignoreNotFound);
  await Deno.rename(download, libs);
  await Deno.writeTextFile(marker, pomHash);
  return libs;
}

/** The `-cp` value for every jar in `libs`. */
export function classpath(libs: string): string {
  return `${libs}/*`;
}

/** A finished tool run. */
export interface ToolResult {
  code: number;
  stdout: string;
  output: string;
}

/** Runs a command to its end; `needs` says what to install when the command is not found. */
export async function runTool(
  command: string,
  args: string[],
  needs: string,
  options: { cwd?: string } = {},
): Promise<ToolResult> {
  try {
    const { code, stdout, stderr } = await new Deno.Command(command, { args, stdin: "null", ...options })
      .output();
    const out = new TextDecoder().decode(stdout);
    return { code, stdout: out, output: out + new TextDecoder().decode(stderr) };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`${command} not found on PATH: ${needs}`);
    throw error;
  }
}

/** A server process whose output goes to a log file, watched so that it dies with this process. */
export interface WatchedProcess {
  child: Deno.ChildProcess;
  watchdog: Deno.ChildProcess;
}

/**
 * Starts `command` with its stdout and stderr appended to `logFile`. A watchdog kills it (and removes
 * `removeDir`, if given) when this Deno process dies without stopping it.
 */
export function spawnWatched(
  command: string[],
  options: { logFile: string; env?: Record<string, string>; removeDir?: string },
): WatchedProcess {
  // exec keeps the program's pid as the child's pid.
  const script = 'log=$1; shift; exec "$@" >>"$log" 2>&1';
  const child = new Deno.Command("sh", {
    args: ["-c", script, "sh", options.logFile, ...command],
    env: options.env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const watchdog = new Deno.Command("sh", {
    args: ["-c", WATCHDOG_SCRIPT, "sh", String(Deno.pid), String(child.pid), options.removeDir ?? ""],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return { child, watchdog };
}

/** Sends `signal` to a child that may have exited already. */
export function signalChild(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // already exited
  }
}

/** Signals the process (SIGKILL after `timeoutMs`), waits for it, and ends its watchdog. */
export async function stopWatched(
  proc: WatchedProcess,
  signal: Deno.Signal,
  timeoutMs: number,
): Promise<void> {
  signalChild(proc.child, signal);
  if (!(await settlesWithin(proc.child.status, timeoutMs))) {
    signalChild(proc.child, "SIGKILL");
    await proc.child.status;
  }
  signalChild(proc.watchdog, "SIGKILL");
  await proc.watchdog.status;
}

/** Whether `promise` settles within `ms`. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The file's text, or undefined when it does not exist. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** For `.catch()` after a removal: a file already gone is fine. */
export function ignoreNotFound(error: unknown): void {
  if (!(error instanceof Deno.errors.NotFound)) throw error;
}

/** The last `lines` lines of a log file. */
export async function logTail(path: string, lines: number, missing: string): Promise<string> {
  const text = await readTextIfExists(path) ?? missing;
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

async function sha256Hex(data: Uint8Array<ArrayBuffer>): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
}

/** Bytes as lower-case hex. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
