/**
 * `make demo`: a local pipeline that shows eventsink's job. Starts a Kafka broker and the stand-in
 * EventStore, writes the example FHIR messages (and a few invalid variants) to a topic, runs eventsink
 * against them until every record is accounted for, and prints what arrived where. Ctrl-C stops it all.
 */
import {
  committedOffsets,
  createTopic,
  endOffsets,
  ensureKafkaJars,
  produce,
  startBroker,
} from "./broker.ts";
import { spawnEventsink } from "./eventsink_process.ts";
import { startEventStore } from "./eventstore.ts";
import {
  conflictingVariant,
  invalidVariants,
  loadFixtures,
  messageIdOf,
  withNewIds,
} from "./fhir_variants.ts";

const TOPIC = "helseopplysninger.rapid";
const GROUP = "hops-eventsink-group";
const CONTENT_TYPE = { "Content-Type": "application/fhir+json; fhirVersion=4.0" };
const encoder = new TextEncoder();

async function demo(interrupted: AbortSignal): Promise<void> {
  step("Fetching Apache Kafka from Maven Central (cached in .cache/kafka after the first run)");
  await ensureKafkaJars();
  const broker = await startBroker();
  await using _stopBroker = { [Symbol.asyncDispose]: () => broker.stop() };
  step(`Kafka broker (KRaft, one node) on ${broker.bootstrap}`);
  await using store = await startEventStore();
  step(`EventStore stand-in on ${store.url}`);
  await createTopic(broker.bootstrap, TOPIC, 3);

  const fixtures = await loadFixtures();
  const valid = fixtures.map((f) => withNewIds(f.bundle));
  const invalid = invalidVariants(fixtures[0]!.bundle).slice(0, 3);
  const records = [
    ...fixtures.map((f, i) => ({ label: `${f.name}`, bundle: valid[i]! })),
    ...invalid.map((v) => ({ label: `invalid: ${v.name}`, bundle: v.bundle })),
    { label: "invalid: same id, other content (409)", bundle: conflictingVariant(valid[0]!) },
  ];
  const values = records.map((r) => encoder.encode(JSON.stringify(r.bundle, null, 2)));
  const positions = await produce(
    broker.bootstrap,
    TOPIC,
    records.map((r, i) => ({ key: messageIdOf(r.bundle), value: values[i]!, headers: CONTENT_TYPE })),
  );
  step(
    `Wrote ${records.length} records to topic ${TOPIC}: ${fixtures.length} example messages, ${
      records.length - fixtures.length
    } invalid ones`,
  );

  step("Running eventsink (its log follows)\n");
  const sink = await spawnEventsink({
    bootstrap: broker.bootstrap,
    topic: TOPIC,
    group: GROUP,
    store,
    args: ["--log-format", "text", "--log-level", "info"],
  });
  const echo = setInterval(() => flushLog(sink.output()), 200);
  try {
    const ends = await endOffsets(broker.bootstrap, TOPIC);
    await waitFor(interrupted, async () => {
      const committed = await committedOffsets(broker.bootstrap, GROUP, TOPIC);
      return [...ends].every(([partition, end]) => committed.get(partition) === end);
    });
    sink.signal("SIGTERM");
    await sink.exited();
  } finally {
    clearInterval(echo);
    flushLog(sink.output());
    await sink.close();
  }

  console.log("\nWhat arrived where:");
  const stored = new Map(store.stored().map((s) => [s.messageId, s]));
  for (const [i, record] of records.entries()) {
    // eventsink's X-Request-ID names the record it posted: eventsink-<topic>-<partition>-<offset>.
    const { partition, offset } = positions[i]!;
    const requestId = `eventsink-${TOPIC}-${partition}-${offset}`;
    const answer = store.requests().findLast((r) => r.headers["x-request-id"] === requestId);
    const body = stored.get(messageIdOf(record.bundle))?.body;
    const identical = body !== undefined && body.length === values[i]!.length &&
      body.every((byte, j) => byte === values[i]![j]);
    const where = answer?.status === 202
      ? `stored by the EventStore (${body?.length} bytes, ${
        identical ? "byte-identical" : "DIFFERENT BYTES"
      })`
      : `rejected with ${answer?.status ?? "no answer"}: skipped and logged by eventsink`;
    console.log(`  ${partition}@${offset}  ${record.label.padEnd(44)} ${where}`);
  }
  const committed = await committedOffsets(broker.bootstrap, GROUP, TOPIC);
  console.log(
    `\nCommitted offsets of ${GROUP}: ${[...committed].map(([p, o]) => `partition ${p} → ${o}`).join(", ")}`,
  );
  console.log("Every record is accounted for: delivered, or rejected and skipped with a log line.");
}

let printed = 0;
/** Echoes eventsink's complete new log lines, indented. */
function flushLog(output: string): void {
  const end = output.lastIndexOf("\n") + 1;
  if (end <= printed) return;
  const fresh = output.slice(printed, end);
  printed = end;
  Deno.stdout.writeSync(encoder.encode(fresh.replace(/^(?=.)/gm, "    ")));
}

function step(text: string): void {
  console.log(`▸ ${text}`);
}

async function waitFor(
  interrupted: AbortSignal,
  condition: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // The group's coordinator may not know the group yet: an error here means "not yet".
  while (!(await condition().catch(() => false))) {
    interrupted.throwIfAborted();
    if (Date.now() > deadline) throw new Error("eventsink did not account for every record within a minute");
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

if (import.meta.main) {
  // Ctrl-C ends the demo at its next wait; the `using` blocks then stop eventsink, the stand-in and Kafka.
  const interrupt = new AbortController();
  Deno.addSignalListener("SIGINT", () => interrupt.abort(new Error("interrupted; cleaning up")));
  try {
    await demo(interrupt.signal);
  } catch (error) {
    console.error(`demo: ${(error as Error).message}`);
    Deno.exitCode = 1;
  }
}
