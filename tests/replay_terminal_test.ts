/**
 * The progress display on a real pseudo-terminal: eventsink runs inside tmux, and the test reads the
 * screen with `tmux capture-pane`, as a person would see it.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { produce } from "./support/broker.ts";
import { permissionFlags } from "./support/eventsink_process.ts";
import { openPipeline, type Pipeline, validMessages, waitUntil } from "./support/pipeline.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const PROGRESS_LINE = /\[[#-]{20}\]/;

/** A tmux server of the test's own (its own socket), so that nothing else on the machine is touched. */
async function tmux(socket: string, ...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("tmux", { args: ["-L", socket, ...args] }).output();
  const text = new TextDecoder().decode(stdout);
  if (code !== 0) throw new Error(`tmux ${args[0]} failed: ${new TextDecoder().decode(stderr)}`);
  return text;
}

/**
 * Runs eventsink in a tmux pane of `columns` (default 120) × 40 and samples the screen every 100 ms until
 * the shell prints eventsink's exit code; returns every screen seen (with colour codes when `escapes`),
 * lines the terminal wrapped joined again (a line too wide shows as one; -J may keep trailing spaces).
 */
async function runInTerminal(
  p: Pipeline,
  args: string[],
  options: {
    env?: Record<string, string>;
    escapes?: boolean;
    columns?: number;
    onScreen?: (screen: string) => void;
  } = {},
): Promise<{ screens: string[]; exitCode: number }> {
  const socket = `eventsink-test-${crypto.randomUUID().slice(0, 8)}`;
  const dir = await Deno.makeTempDir({ prefix: "eventsink-tty-" });
  const env = {
    HOME: Deno.env.get("HOME") ?? "/root",
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    TERM: "xterm-256color",
    ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
    ...options.env,
  };
  const command = [
    Deno.execPath(),
    "run",
    "--frozen",
    ...(await permissionFlags()),
    `${ROOT}main.ts`,
    ...["--brokers", p.bootstrap, "--topic", p.topic, "--group", p.group, "--eventstore-url", p.store.url],
    ...["--log-level", "warn", ...args],
  ];
  const script = `${dir}/run.sh`;
  await Deno.writeTextFile(
    script,
    [
      `cd ${quote(ROOT)}`,
      `env -i ${Object.entries(env).map(([k, v]) => quote(`${k}=${v}`)).join(" ")} ${
        command.map(quote).join(" ")
      }`,
      `echo "exit code $?"`,
      "sleep 600",
    ].join("\n"),
  );
  try {
    const columns = String(options.columns ?? 120);
    await tmux(socket, "new-session", "-d", "-x", columns, "-y", "40", "-s", "replay", `sh ${quote(script)}`);
    const screens: string[] = [];
    let exitCode: number | undefined;
    await waitUntil("eventsink's exit code on the screen", async () => {
      const screen = await tmux(
        socket,
        "capture-pane",
        "-p",
        "-J",
        ...(options.escapes ? ["-e"] : []),
        "-t",
        "replay",
      );
      if (screens.at(-1) !== screen) {
        screens.push(screen);
        options.onScreen?.(screen);
      }
      const match = /exit code (\d+)/.exec(screen);
      if (match) exitCode = Number(match[1]);
      return exitCode !== undefined;
    }, 60_000);
    return { screens, exitCode: exitCode! };
  } finally {
    await tmux(socket, "kill-server").catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

function quote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function progressLines(screen: string): string[] {
  return screen.split("\n").filter((line) => PROGRESS_LINE.test(line));
}

Deno.test("terminal: the progress line is redrawn in place, reaches 100 %, and the summary follows", async () => {
  await using p = await openPipeline(2);
  const messages = await validMessages(150);
  await produce(p.bootstrap, p.topic, messages.map((m, i) => ({ value: m.bytes, partition: i % 2 })));

  // The EventStore is down at first: the line says so, until it is back.
  p.store.faults.outage({ status: 503 });
  let outageSeen: string | undefined;
  const { screens, exitCode } = await runInTerminal(
    p,
    [
      "--from-beginning",
      "--until-end",
      "--max-rate",
      "40",
      "--retry-initial",
      "100ms",
      "--retry-max",
      "300ms",
    ],
    {
      escapes: true,
      onScreen(screen) {
        outageSeen ??= progressLines(screen).find((line) =>
          line.includes("! EventStore failing (503), retrying")
        );
        if (outageSeen) p.store.faults.reset();
      },
    },
  );
  assert.equal(exitCode, 0, screens.at(-1));
  assert.match(stripped(outageSeen ?? ""), /retrying [1-9]/, "the failing EventStore was shown");
  // One progress line at a time on the screen, whose figures change: it is redrawn, not repeated.
  for (const screen of screens) assert.ok(progressLines(screen).length <= 1, screen);
  const percents = new Set(screens.flatMap(progressLines).map((line) => /(\d+(?:\.\d)?)%/.exec(line)?.[1]));
  assert.ok(percents.size >= 4, `percentages seen: ${[...percents].join(", ")}`);
  const last = screens.at(-1)!.split("\n");
  const barAt = last.findIndex((line) => PROGRESS_LINE.test(line));
  assert.match(last[barAt]!, /\[#{20}\].*100%.*150\/150.*delivered 150/);
  assert.ok(last[barAt]!.includes("\x1b["), "coloured on a terminal");
  const summaryAt = last.findIndex((line) => /Replay of \S+ finished in /.test(line));
  assert.match(last[summaryAt + 1] ?? "", /^ {2}records +150 {2}of 150, at /);
  assert.ok(summaryAt > barAt, "the summary follows the progress line");
  assert.ok(last.slice(summaryAt).some((line) => /exit 0: every record was delivered/.test(line)));
  assert.ok(
    last.slice(barAt).every((line) => stripped(line).trimEnd().length <= 120),
    "the progress line and the summary no wider than the terminal",
  );
});

Deno.test("terminal: NO_COLOR turns colour off; --quiet shows no progress line but still the summary", async () => {
  await using p = await openPipeline(1);
  const messages = await validMessages(40);
  await produce(p.bootstrap, p.topic, messages.map((m) => ({ value: m.bytes })));

  const plain = await runInTerminal(p, ["--from-beginning", "--until-end", "--max-rate", "20"], {
    env: { NO_COLOR: "1" },
    escapes: true,
  });
  assert.equal(plain.exitCode, 0, plain.screens.at(-1));
  assert.ok(plain.screens.some((screen) => progressLines(screen).length === 1), "a progress line was shown");
  assert.ok(plain.screens.every((screen) => !screen.includes("\x1b[")), "no colour codes with NO_COLOR");

  const quiet = await runInTerminal(p, ["--from-beginning", "--until-end", "--quiet"]);
  assert.equal(quiet.exitCode, 0, quiet.screens.at(-1));
  assert.ok(quiet.screens.every((screen) => progressLines(screen).length === 0), "no progress line");
  assert.match(quiet.screens.at(-1)!, /Replay of \S+ finished .*\n {2}records +40 {2}of 40, at /);
});

Deno.test("terminal: at 80 columns the failing note is kept whole, and no summary row wraps", async () => {
  await using p = await openPipeline(1);
  const messages = await validMessages(60);
  await produce(p.bootstrap, p.topic, messages.map((m) => ({ value: m.bytes })));

  p.store.faults.outage({ status: 503 });
  let outageSeen: string | undefined;
  const { screens, exitCode } = await runInTerminal(
    p,
    [
      "--from-beginning",
      "--until-end",
      "--max-rate",
      "30",
      "--retry-initial",
      "100ms",
      "--retry-max",
      "300ms",
    ],
    {
      columns: 80,
      onScreen(screen) {
        // The bar may be dropped to make room: the line is found by its note.
        outageSeen ??= screen.split("\n").find((line) => line.includes("! EventStore failing (503)"));
        if (outageSeen) p.store.faults.reset();
      },
    },
  );
  assert.equal(exitCode, 0, screens.at(-1));
  assert.match(
    outageSeen ?? "",
    /%.*! EventStore failing \(503\), retrying\s*$/,
    "the whole note, at the end",
  );
  const last = screens.at(-1)!.split("\n");
  // From the progress line on: the log lines above it (the retries) may be as wide as they are.
  const from = last.findIndex((line) => PROGRESS_LINE.test(line));
  assert.ok(from >= 0 && /Replay of \S+ finished in /.test(last[from + 1] ?? ""), screens.at(-1));
  const wide = last.slice(from).filter((line) => line.trimEnd().length > 80);
  assert.deepEqual(wide, [], "the progress line or summary rows wider than the terminal (wrapped by it)");
});

function stripped(line: string): string {
  // deno-lint-ignore no-control-regex
  return line.replace(/\x1b\[[0-9;]*m/g, "");
}
