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
  asResponseTo,
  conflictingVariant,
  type FhirBundle,
  invalidVariants,
  loadFixtures,
  messageIdOf,
  withNewIds,
} from "./fhir_variants.ts";

const TOPIC = "helseopplysninger.rapid";
const GROUP = "hops-eventsink-group";
const CONTENT_TYPE = "application/fhir+json; fhirVersion=4.0";
const encoder = new TextEncoder();

interface DemoRecord {
  label: string;
  bundle: FhirBundle;
  /** Default the message id. */
  key?: string;
  /** Default application/fhir+json; fhirVersion=4.0. */
  contentType?: string;
}

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
  const [order, dialog, patientLink] = fixtures.map((f) => withNewIds(f.bundle)) as [
    FhirBundle,
    FhirBundle,
    FhirBundle,
  ];
  const variant = (name: string) => invalidVariants(fixtures[0]!.bundle).find((v) => v.name === name)!.bundle;
  // The platform's traffic: an order, the dialog message answering it, a patient link, a re-delivery, and
  // what the real EventStore refuses. A record's key is its message id; the answer is keyed by the order it
  // answers, so that it follows the order in its partition (the store refuses an answer to an unknown order).
  const records: DemoRecord[] = [
    { label: "order (Task + Questionnaire)", bundle: order },
    {
      label: "dialog message answering the order",
      bundle: asResponseTo(dialog, messageIdOf(order)),
      key: messageIdOf(order),
    },
    { label: "patient link", bundle: patientLink },
    { label: "the patient link again (a re-delivery)", bundle: patientLink },
    { label: "invalid: MessageHeader without source", bundle: variant("missing-source") },
    { label: "invalid: upper-case message id", bundle: variant("upper-case-message-id") },
    {
      label: "invalid: same id as the order, other content",
      bundle: conflictingVariant(order),
      key: messageIdOf(order),
    },
    {
      label: "sent as application/json",
      bundle: withNewIds(fixtures[0]!.bundle),
      contentType: "application/json",
    },
  ];
  const values = records.map((r) => encoder.encode(JSON.stringify(r.bundle, null, 2)));
  const positions = await produce(
    broker.bootstrap,
    TOPIC,
    records.map((r, i) => ({
      key: r.key ?? messageIdOf(r.bundle),
      value: values[i]!,
      headers: { "Content-Type": r.contentType ?? CONTENT_TYPE },
    })),
  );
  step(`Wrote ${records.length} records to topic ${TOPIC}`);

  step("Running eventsink (its log follows)\n");
  const sink = await spawnEventsink({
    bootstrap: broker.bootstrap,
    topic: TOPIC,
    group: GROUP,
    store,
    args: ["--log-format", "text", "--log-level", "info"],
    ordering: null, // eventsink's default
  });
  const echo = setInterval(() => flushLog(sink.output()), 200);
  try {
    const ends = await endOffsets(broker.bootstrap, TOPIC);
    await waitFor(interrupted, async () => {
      const committed = await committedOffsets(broker.bootstrap, GROUP, TOPIC);
      // A partition no record went to has nothing to commit.
      return [...ends].every(([partition, end]) => end === 0 || committed.get(partition) === end);
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
    const kept = stored.get(messageIdOf(record.bundle));
    // The request that stored a message arrived when the stored message did; a repeat came later.
    const storedByThis = kept !== undefined && kept.receivedAt.getTime() === answer?.receivedAt.getTime();
    const identical = kept !== undefined && kept.body.length === values[i]!.length &&
      kept.body.every((byte, j) => byte === values[i]![j]);
    const where = answer?.status !== 202
      ? `rejected with ${answer?.status ?? "no answer"}: skipped and logged by eventsink`
      : storedByThis
      ? `stored by the EventStore (${kept.body.length} bytes, ${
        identical ? "byte-identical" : "DIFFERENT BYTES"
      })`
      : "202: already stored, not stored twice";
    console.log(`  ${partition}@${offset}  ${record.label.padEnd(48)} ${where}`);
  }
  const committed = await committedOffsets(broker.bootstrap, GROUP, TOPIC);
  const described = [...committed].map(([p, o]) => `partition ${p} → ${o < 0 ? "none (no records)" : o}`);
  console.log(`\nCommitted offsets of ${GROUP}: ${described.join(", ")}`);
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
