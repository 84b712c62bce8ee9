/**
 * Cutting over from hops-EventSinkKafka: its Java consumer and eventsink's KafkaJS one cannot share a group
 * (they offer different partition assignors). A real Java consumer, Kafka's ConsoleConsumer, stands in for
 * the original, as it offers the same assignors.
 */
import assert from "node:assert/strict";
import { startJavaConsumer } from "./support/broker.ts";
import { runCheck, spawnEventsink } from "./support/eventsink_process.ts";
import { openPipeline } from "./support/pipeline.ts";

const STOP_IT =
  /consumer group \S+ has a member that assigns partitions in a way eventsink's Kafka client does not speak/;

Deno.test("cut-over: a group still holding a Java consumer is named as the cause, by check and at start", async (t) => {
  await using p = await openPipeline(2);
  await using java = await startJavaConsumer(p.bootstrap, p.topic, p.group);

  await t.step("check fails the group and says to stop the other consumer", async () => {
    const check = await runCheck(p);
    assert.equal(check.code, 1, check.output);
    const line = check.output.split("\n").find((l) => l.startsWith("FAIL"));
    assert.match(line ?? check.output, STOP_IT);
    assert.match(line!, /does not speak \(range\);/, "check names the other consumer's assignor");
    assert.match(line!, /the original hops-EventSinkKafka still running\? Stop it, then start eventsink/);
  });

  await t.step("eventsink exits 1 within seconds with one error that names the cause", async () => {
    const started = performance.now();
    const sink = await spawnEventsink(p);
    try {
      assert.equal(await sink.exited(30_000), 1);
      const errors = sink.lines.filter((line) => line.level === "error");
      assert.equal(errors.length, 1, sink.output());
      assert.match(String(errors[0]!.error ?? errors[0]!.msg), STOP_IT);
      assert.ok(performance.now() - started < 20_000, "named fast");
    } finally {
      await sink.close();
    }
    assert.doesNotMatch(await java.log(), /Exception/, "the Java consumer went on undisturbed");
  });
});
