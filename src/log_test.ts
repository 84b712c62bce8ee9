/** The logger's formats, the journal's among them. */
import assert from "node:assert/strict";
import { fstatSync } from "node:fs";
import { createLogger, lazyChild, type LogFormat, stderrIsJournal } from "./log.ts";

const NOW = new Date("2026-01-01T00:00:00Z");

function lines(format: LogFormat, journal: boolean): string[] {
  const written: string[] = [];
  const log = createLogger({
    level: "debug",
    format,
    journal,
    write: (line) => written.push(line),
    now: () => NOW,
  });
  log.debug("Committed", { partition: 0, offset: 5 });
  log.info("Partitions assigned");
  log.warn("Delivery failed, will retry", { reason: "EventStore answered 503" });
  log.error("Cannot start");
  return written;
}

/** The four lines of {@link lines} in text format, each behind `prefix(level)`. */
function textLines(prefix: (level: string) => string): string[] {
  return [
    `${prefix("debug")}DEBUG Committed partition=0 offset=5`,
    `${prefix("info")}INFO  Partitions assigned`,
    `${prefix("warn")}WARN  Delivery failed, will retry reason="EventStore answered 503"`,
    `${prefix("error")}ERROR Cannot start`,
  ];
}

Deno.test("log: text lines carry their own time, outside the journal", () => {
  assert.deepEqual(lines("text", false), textLines(() => "2026-01-01T00:00:00.000Z "));
});

Deno.test("log: in the journal, a syslog priority prefix per level and no time of our own", () => {
  const priority: Record<string, string> = { debug: "<7>", info: "<6>", warn: "<4>", error: "<3>" };
  assert.deepEqual(lines("text", true), textLines((level) => priority[level]!));
});

Deno.test("log: JSON lines stay whole JSON; in the journal behind the priority prefix", () => {
  const [plain] = lines("json", false);
  assert.deepEqual(JSON.parse(plain!), {
    time: "2026-01-01T00:00:00.000Z",
    level: "debug",
    msg: "Committed",
    partition: 0,
    offset: 5,
  });
  const journal = lines("json", true);
  assert.deepEqual(journal.map((l) => l.slice(0, 3)), ["<7>", "<6>", "<4>", "<3>"]);
  assert.deepEqual(JSON.parse(journal[0]!.slice(3)), JSON.parse(plain!));
});

Deno.test("log: JOURNAL_STREAM counts only when it names this process's stderr", () => {
  const stat = fstatSync(2);
  assert.equal(stderrIsJournal(undefined), false);
  assert.equal(stderrIsJournal(`${stat.dev}:${stat.ino}`), true);
  assert.equal(stderrIsJournal(`${stat.dev}:${stat.ino + 1}`), false, "stderr redirected elsewhere");
});

Deno.test("log: a lazy child makes its fields only for its first line, and writes them on every line", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "info", format: "json", write: (line) => lines.push(line) }, {
    topic: "t",
  });
  let made = 0;
  const child = lazyChild(log, () => ({ partition: 3, offset: ++made }));
  assert.equal(made, 0, "nothing made before a line");
  child.warn("Delivery failed, will retry", { attempt: 2 });
  child.child({ extra: true }).info("Delivered after retries");
  assert.equal(made, 1, "the fields are made once");
  assert.deepEqual(lines.map((line) => JSON.parse(line)).map(({ time: _, ...rest }) => rest), [
    { level: "warn", msg: "Delivery failed, will retry", topic: "t", partition: 3, offset: 1, attempt: 2 },
    { level: "info", msg: "Delivered after retries", topic: "t", partition: 3, offset: 1, extra: true },
  ]);
});
