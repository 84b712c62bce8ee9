/**
 * Produce-to-stored latency at a steady offered load: a sink that is caught up on a fresh topic gets
 * records at `rate` per second for a while; each record's latency runs from the producer's send to the
 * stand-in's 2xx answer (both on this machine's clock). A backlog replay has no such latency to speak of
 * — every record was produced before the sink started — so this is measured apart from it.
 */
import { Buffer } from "node:buffer";
import { createTopic, kafkaClient, uniqueName } from "../tests/support/broker.ts";
import { onCleanUp } from "./children.ts";
import type { Subject } from "./configs.ts";
import { messageMaker } from "./messages.ts";
import { percentile } from "./stats.ts";
import type { StoreHost } from "./store_client.ts";
import { startSink } from "./sinks.ts";

const CONTENT_TYPE = { "Content-Type": "application/fhir+json; fhirVersion=4.0" };
const SEND_EVERY_MS = 20;
const WARM_RECORDS = 16;
/** Records not stored this long after the last send count as not stored (latency ∞). */
const DRAIN_MS = 5_000;

/** A live-latency run's settings. */
export interface LiveOptions {
  bootstrap: string;
  store: StoreHost;
  partitions: number;
  keys: number;
  rate: number;
  seconds: number;
  latencyMs: number;
  signal: AbortSignal;
}

/** What a live run measured; latencies in ms, Infinity where records were not stored in time. */
export interface LiveResult {
  subject: Subject;
  latencyMs: number;
  produced: number;
  stored: number;
  p50: number;
  p99: number;
  max: number;
  error?: string;
}

/** Runs `subject` caught-up on a fresh topic and measures produce-to-stored latency. */
export async function measureLive(subject: Subject, options: LiveOptions): Promise<LiveResult> {
  const { bootstrap, store } = options;
  const topic = uniqueName("bench-live");
  const group = uniqueName("bench");
  await createTopic(bootstrap, topic, options.partitions);
  await store.setLatency(options.latencyMs);
  await store.reset();
  const make = await messageMaker("fixtures");
  const keys = Array.from({ length: options.keys }, () => crypto.randomUUID());
  const producer = kafkaClient(bootstrap).producer();
  await producer.connect();
  const removeProducer = onCleanUp(() => producer.disconnect());
  const send = async (count: number) => {
    const made = Array.from({ length: count }, () => make());
    const at = Date.now();
    await producer.send({
      topic,
      messages: made.map((m) => ({
        key: keys[Math.floor(Math.random() * keys.length)]!,
        value: Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength),
        headers: CONTENT_TYPE,
      })),
    });
    return made.map((m) => [m.messageId, at] as const);
  };
  const { close } = await startSink(subject, { bootstrap, topic, group, url: store.url });
  try {
    // Caught up and warm: the group has joined and connections are open once these are stored.
    await send(WARM_RECORDS);
    await waitFor(async () => (await store.progress()).accepted >= WARM_RECORDS, 90_000, options.signal);
    await store.startLive();
    const sent = new Map<string, number>();
    const perSend = options.rate * SEND_EVERY_MS / 1000;
    const sends = Math.round(options.seconds * 1000 / SEND_EVERY_MS);
    const begin = performance.now();
    let owed = 0;
    for (let i = 0; i < sends; i++) {
      options.signal.throwIfAborted();
      owed += perSend;
      const count = Math.floor(owed);
      owed -= count;
      if (count > 0) { for (const [id, at] of await send(count)) sent.set(id, at); }
      const wait = begin + (i + 1) * SEND_EVERY_MS - performance.now();
      if (wait > 0) await sleep(wait);
    }
    const lastSend = Date.now();
    let stored = new Map<string, number>();
    await waitFor(
      async () => {
        const p = await store.progress();
        return p.accepted >= WARM_RECORDS + sent.size || Date.now() > lastSend + DRAIN_MS;
      },
      DRAIN_MS + 5_000,
      options.signal,
    );
    stored = await store.stopLive();
    const latencies = [...sent].map(([id, at]) => {
      const storedAt = stored.get(id);
      return storedAt === undefined ? Infinity : storedAt - at;
    }).sort((a, b) => a - b);
    return {
      subject,
      latencyMs: options.latencyMs,
      produced: sent.size,
      stored: latencies.filter(Number.isFinite).length,
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      max: latencies.at(-1) ?? NaN,
    };
  } catch (error) {
    options.signal.throwIfAborted();
    return {
      subject,
      latencyMs: options.latencyMs,
      produced: 0,
      stored: 0,
      p50: NaN,
      p99: NaN,
      max: NaN,
      error: (error as Error).message,
    };
  } finally {
    await close();
    await producer.disconnect().catch(() => {});
    removeProducer();
    await sleep(options.latencyMs + 300);
  }
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number, signal: AbortSignal) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    signal.throwIfAborted();
    if (Date.now() > deadline) throw new Error(`not done within ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
