import assert from "node:assert/strict";
import { createDisplay, type DisplayOptions } from "./display.ts";
import { createLogger } from "../log.ts";
import type { Progress } from "./progress.ts";

const PROGRESS: Progress = {
  elapsedMs: 1_000,
  done: 5,
  total: 10,
  perSecond: 5,
  counts: { consumed: 5, delivered: 5, deadLettered: 0, skipped: 0, unfinished: 0, deleted: 0, retries: 0 },
  retrying: 0,
  failing: undefined,
  dryRun: false,
};

function display(options: Partial<DisplayOptions>) {
  const written: string[] = [];
  const shown = createDisplay({
    terminal: true,
    colour: false,
    quiet: false,
    intervalMs: 60_000,
    write: (text) => written.push(text),
    columns: () => 120,
    ...options,
  });
  const logged: string[] = [];
  const log = createLogger({ level: "info", format: "text", write: (line) => logged.push(line) });
  return { shown, written, logged, log };
}

Deno.test("display: on a terminal, one line redrawn in place, and log lines go above it", () => {
  const { shown, written, log } = display({});
  shown.writeLog("before start");
  shown.start(() => PROGRESS, log);
  shown.writeLog("a log line");
  shown.finish();
  shown.writeLog("after finish");
  assert.equal(written[0], "before start\n");
  assert.ok(written[1]!.startsWith("\r\x1b[K[##########----------]   50.0%  5/10"), written[1]);
  assert.equal(written[2], `\r\x1b[Ka log line\n${written[1]!.slice(4)}`, "cleared, logged, redrawn");
  assert.equal(written[3], written[1], "the final line");
  assert.equal(written[4], "\n", "left on screen");
  assert.equal(written[5], "after finish\n");
});

Deno.test("display: off a terminal, progress goes to the log; quiet shows nothing", () => {
  const plain = display({ terminal: false, intervalMs: 10 });
  plain.shown.start(() => PROGRESS, plain.log);
  plain.shown.writeLog("a log line");
  plain.shown.finish();
  assert.deepEqual(plain.written, ["a log line\n"]);

  const quiet = display({ quiet: true });
  quiet.shown.start(() => PROGRESS, quiet.log);
  quiet.shown.writeLog("a log line");
  quiet.shown.finish();
  assert.deepEqual(quiet.written, ["a log line\n"]);
  assert.deepEqual(quiet.logged, []);
});

Deno.test("display: off a terminal, a progress log line every interval", async () => {
  const { shown, logged, log } = display({ terminal: false, intervalMs: 20 });
  shown.start(() => PROGRESS, log);
  await new Promise((resolve) => setTimeout(resolve, 70));
  shown.finish();
  assert.ok(logged.length >= 2, `${logged.length} lines`);
  assert.match(logged[0]!, /INFO {2}Progress done=5 total=10 percent=50\.0% perSecond=5 eta=1s delivered=5/);
});
