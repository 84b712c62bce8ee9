/** The logger's formats, the journal's among them. */
import assert from "node:assert/strict";
import { fstatSync } from "node:fs";
import { createLogger, type LogFormat, stderrIsJournal } from "./log.ts";

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

Deno.test("log: text lines carry their own time, outside the journal", () => {
  assert.deepEqual(lines("text", false), [
    "2026-01-01T00:00:00.000Z DEBUG Committed partition=0 offset=5",
    "2026-01-01T00:00:00.000Z INFO  Partitions assigned",
    '2026-01-01T00:00:00.000Z WARN  Delivery failed, will retry reason="EventStore answered 503"',
    "2026-01-01T00:00:00.000Z ERROR Cannot start",
  ]);
});

Deno.test("log: in the journal, a syslog priority prefix per level and no time of our own", () => {
  assert.deepEqual(lines("text", true), [
    "<7>DEBUG Committed partition=0 offset=5",
    "<6>INFO  Partitions assigned",
    '<4>WARN  Delivery failed, will retry reason="EventStore answered 503"',
    "<3>ERROR Cannot start",
  ]);
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
