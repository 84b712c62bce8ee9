/**
 * The benchmark's child processes: every one is registered for clean-up (Ctrl-C, errors) and watched by a
 * tiny shell watchdog that SIGKILLs it should the harness itself die without cleaning up (kill -9).
 */
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const cleanups = new Set<() => Promise<void>>();
const STDERR_TAIL_CHARS = 4_000;

// Exits when the child is gone; kills it when the harness ($1) is gone. INT/TERM are ignored so that
// Ctrl-C on the terminal's process group leaves the clean-up to the harness.
const WATCHDOG = `trap '' INT TERM HUP
while kill -0 "$2" 2>/dev/null; do
  kill -0 "$1" 2>/dev/null || { kill -9 "$2" 2>/dev/null; exit 0; }
  sleep 1
done`;

/** Registers a clean-up for {@link cleanUpAll}; returns its removal. */
export function onCleanUp(cleanup: () => Promise<void>): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Runs every registered clean-up (children first registered last are closed first). */
export async function cleanUpAll(): Promise<void> {
  const all = [...cleanups].reverse();
  cleanups.clear();
  for (const cleanup of all) await cleanup().catch(() => {});
}

/** Starts a watchdog that SIGKILLs `pid` once this process has died; it ends with `pid`. */
export function watch(pid: number): void {
  const watchdog = new Deno.Command("sh", {
    args: ["-c", WATCHDOG, "sh", String(Deno.pid), String(pid)],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  watchdog.unref();
}

/** A child process of the bench: a bench script in its own Deno process, or another program. */
export interface ScriptProcess {
  readonly pid: number;
  /** Resolves with the first line the script prints (its ready line). */
  firstLine: Promise<string>;
  /** The last few KB it wrote on stderr. */
  stderrTail(): string;
  /** Whether it has exited. */
  readonly exited: boolean;
  /** SIGKILLs it (if still running) and waits for it. */
  close(): Promise<void>;
}

/** Runs `deno run --frozen -A bench/<script> …args`; `onLine` gets every stdout line after the first. */
export function spawnScript(
  script: string,
  args: string[],
  onLine: (line: string) => void = () => {},
): ScriptProcess {
  const command = {
    path: Deno.execPath(),
    args: ["run", "--frozen", "-A", `${ROOT}bench/${script}`, ...args],
  };
  return spawnProcess(`bench/${script}`, command, onLine);
}

/**
 * Runs `command` in the repository's root, watched and registered for clean-up like every child; `onLine`
 * gets every stdout line after the first. `name` is for error messages.
 */
export function spawnProcess(
  name: string,
  command: { path: string; args: string[]; env?: Record<string, string> },
  onLine: (line: string) => void = () => {},
): ScriptProcess {
  const child = new Deno.Command(command.path, {
    args: command.args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...command.env },
  }).spawn();
  watch(child.pid);
  let stderr = "";
  let exited = false;
  const status = child.status.finally(() => (exited = true));
  const errors = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr = (stderr + text).slice(-STDERR_TAIL_CHARS);
    }
  })();
  let resolveFirst: (line: string) => void = () => {};
  let rejectFirst: (error: Error) => void = () => {};
  const firstLine = new Promise<string>((resolve, reject) => {
    resolveFirst = resolve;
    rejectFirst = reject;
  });
  const lines = (async () => {
    let pending = "";
    let first = true;
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += text;
      const parts = pending.split("\n");
      pending = parts.pop()!;
      for (const line of parts) {
        if (first) resolveFirst(line);
        else onLine(line);
        first = false;
      }
    }
    await errors;
    rejectFirst(new Error(`${name} ended before it was ready:\n${stderr}`));
  })();
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      try {
        if (!exited) child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await status;
      await lines;
      removeCleanUp();
    })();
  const removeCleanUp = onCleanUp(close);
  firstLine.catch(() => {}); // observed by the caller; the rejection must not go unhandled meanwhile
  return {
    pid: child.pid,
    firstLine,
    stderrTail: () => stderr,
    get exited() {
      return exited;
    },
    close,
  };
}
