/**
 * Bounded memory: eventsink replays a long backlog (a million records by default) while its RSS is sampled
 * every second. The figure that matters is whether RSS levels off — bounded by the in-flight limit and
 * KafkaJS's fetch sizes — instead of growing with the records behind it.
 */
import { uniqueName } from "../tests/support/broker.ts";
import type { Subject } from "./configs.ts";
import { memoryOf } from "./proc.ts";
import { startSink } from "./sinks.ts";
import type { StoreHost } from "./store_client.ts";

/** One sample of the replay. */
export interface MemorySample {
  elapsedS: number;
  stored: number;
  rssMb: number;
  peakMb: number;
}

/** The replay's outcome. */
export interface MemoryResult {
  subject: Subject;
  records: number;
  stored: number;
  seconds: number;
  samples: MemorySample[];
  peakMb: number;
  error?: string;
}

const SAMPLE_MS = 1_000;
const START_TIMEOUT_MS = 90_000;

/** Replays `topic` (of `records` records) with `subject` at 0 ms latency until done or `maxSeconds`. */
export async function replayForMemory(
  subject: Subject,
  options: {
    bootstrap: string;
    topic: string;
    records: number;
    store: StoreHost;
    maxSeconds: number;
    signal: AbortSignal;
    onSample?: (sample: MemorySample) => void;
  },
): Promise<MemoryResult> {
  const { store } = options;
  await store.setLatency(0);
  await store.reset();
  const group = uniqueName("bench-memory");
  const sink = await startSink(subject, { ...options, group, url: store.url });
  const samples: MemorySample[] = [];
  const begin = Date.now();
  const result = (error?: string): MemoryResult => ({
    subject,
    records: options.records,
    stored: samples.at(-1)?.stored ?? 0,
    seconds: (Date.now() - begin) / 1000,
    samples,
    peakMb: samples.length ? Math.max(...samples.map((s) => s.peakMb)) : NaN,
    ...(error ? { error } : {}),
  });
  try {
    for (;;) {
      options.signal.throwIfAborted();
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
      const [progress, memory] = await Promise.all([store.progress(), memoryOf(sink.pid)]);
      if (!memory) return result(`eventsink exited:\n${sink.describe()}`);
      const sample = {
        elapsedS: (Date.now() - begin) / 1000,
        stored: progress.accepted,
        rssMb: memory.rssMb,
        peakMb: memory.peakMb,
      };
      samples.push(sample);
      options.onSample?.(sample);
      if (progress.accepted >= options.records) return result();
      if (progress.accepted === 0 && Date.now() - begin > START_TIMEOUT_MS) {
        return result(`nothing stored within ${START_TIMEOUT_MS / 1000} s:\n${sink.describe()}`);
      }
      if (Date.now() - begin > options.maxSeconds * 1000) {
        return result(`stopped after ${options.maxSeconds} s, before the end of the backlog`);
      }
    }
  } finally {
    await sink.close();
  }
}
