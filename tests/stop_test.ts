/**
 * Stops and start-up failures that name their cause fast (issue 18, item 3): a stop ends retries at once,
 * a port that is not Kafka is named within seconds, a signal during start-up exits at once, and a second
 * Ctrl-C in a replay still ends with its summary, the resume line and the group removed. Real broker,
 * real HTTP, eventsink as its own process.
 */
import assert from "node:assert/strict";
import { groupMembers, produce } from "./support/broker.ts";
import { type EventsinkProcess, spawnEventsink, spawnRaw } from "./support/eventsink_process.ts";
import { openPipeline, validMessages, waitUntil } from "./support/pipeline.ts";

/** Milliseconds from `signal` until the process exits, with its exit code. */
async function timeToExit(
  process: EventsinkProcess,
  signal: Deno.Signal,
  timeoutMs = 60_000,
): Promise<{ code: number; ms: number }> {
  const at = Date.now();
  process.signal(signal);
  const code = await process.exited(timeoutMs);
  return { code, ms: Date.now() - at };
}

/** A TCP port that accepts connections and never says a word: a listener that is not Kafka's. */
function silentPort(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) held.push(conn);
  })().catch(() => {});
  return {
    port: listener.addr.port,
    close() {
      listener.close();
      held.forEach((conn) => conn.close());
    },
  };
}

Deno.test("stop: SIGTERM while the EventStore fails ends the retries at once, exit 0, nothing committed", async () => {
  await using p = await openPipeline(1);
  p.store.faults.outage({ status: 503 });
  const [record] = await validMessages(1);
  await produce(p.bootstrap, p.topic, [{ value: record!.bytes, partition: 0 }]);
  // The default grace (20 s), and backoff waits long enough that a stop would sit in one.
  const sink = await spawnEventsink({ ...p, args: ["--retry-initial", "2s", "--retry-max", "10s"] });
  try {
    await waitUntil("two attempts", () => p.store.requests().length >= 2, 30_000);
    const { code, ms } = await timeToExit(sink, "SIGTERM");
    assert.equal(code, 0, sink.output().slice(-2000));
    assert.ok(ms < 5_000, `exited ${ms} ms after SIGTERM: the retries did not end at once`);
    const stopped = sink.lines.find((l) => l.msg === "Stopped");
    assert.equal(stopped?.unfinished, 1, "the record is left unfinished, for the next start");
    assert.equal(p.store.stored().length, 0);
  } finally {
    await sink.close();
  }
});

Deno.test("start-up: a port that accepts TCP but is not Kafka is named with its address within 10 s, in run and in check", async (t) => {
  await using p = await openPipeline(1);
  const silent = silentPort();
  const brokers = `127.0.0.1:${silent.port}`;
  const expected = new RegExp(`Kafka\\s+(at )?${brokers} did not answer`);
  try {
    await t.step("run", async () => {
      const started = Date.now();
      const sink = await spawnEventsink({ ...p, bootstrap: brokers });
      try {
        assert.equal(await sink.exited(30_000), 1, sink.output().slice(-2000));
        const ms = Date.now() - started;
        assert.ok(ms < 12_000, `took ${ms} ms`);
        const error = sink.lines.find((l) => l.level === "error");
        assert.match(String(error?.msg), expected);
        assert.match(String(error?.msg), /Kafka protocol/);
      } finally {
        await sink.close();
      }
    });
    await t.step("check", async () => {
      const started = Date.now();
      const check = await spawnRaw([
        "check",
        "--brokers",
        brokers,
        "--topic",
        p.topic,
        "--eventstore-url",
        p.store.url,
      ]);
      try {
        assert.equal(await check.exited(30_000), 1);
        const ms = Date.now() - started;
        assert.ok(ms < 12_000, `took ${ms} ms`);
        assert.match(check.output(), expected);
      } finally {
        await check.close();
      }
    });
    await t.step("a SIGINT during that wait stops at once, exit 0", async () => {
      const sink = await spawnEventsink({ ...p, bootstrap: brokers });
      try {
        await sink.waitForLog((l) => l.msg === "HTTP endpoint listening", 20_000);
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        const { code, ms } = await timeToExit(sink, "SIGINT");
        assert.equal(
          code,
          0,
          `a service stopped before it began lost nothing:\n${sink.output().slice(-1500)}`,
        );
        assert.ok(ms < 4_000, `exited ${ms} ms after SIGINT`);
        assert.ok(sink.lines.some((l) => l.msg === "Stopped"), "with its Stopped line");
      } finally {
        await sink.close();
      }
    });
  } finally {
    silent.close();
  }
});

Deno.test("replay: a second Ctrl-C still ends with the summary, the resume line and the replay group removed", async () => {
  await using p = await openPipeline(1);
  const messages = await validMessages(10);
  await produce(p.bootstrap, p.topic, messages.map((m) => ({ value: m.bytes, partition: 0 })));
  const run = await spawnEventsink({ ...p, args: ["--from-beginning", "--until-end"] });
  try {
    await p.store.waitForStored(1, { timeoutMs: 30_000 });
    // The next POSTs hang: the first Ctrl-C waits for them (the grace period).
    p.store.faults.latency(60_000);
    await waitUntil("a POST is held", () => p.store.requests().length < messages.length, 10_000);
    const group = String(run.lines.find((l) => / starting$/.test(l.msg))?.group);
    run.signal("SIGINT");
    await run.waitForLog((l) => l.msg.startsWith("SIGINT received"), 5_000);
    const { code, ms } = await timeToExit(run, "SIGINT", 30_000);
    assert.equal(code, 1, "stopped before the end");
    assert.ok(ms < 8_000, `exited ${ms} ms after the second SIGINT`);
    assert.match(run.output(), /to go on from here: --from-offsets 0=\d+/);
    const summary = run.lines.find((l) => l.msg === "Summary");
    assert.equal(summary?.groupAtEnd, "removed");
    assert.equal((await groupMembers(p.bootstrap, group)).state, "Dead", "the replay group is gone");
  } finally {
    p.store.faults.reset();
    await run.close();
  }
});
