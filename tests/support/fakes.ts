/** Test doubles shared by the unit tests beside the code: a log that keeps its lines, a batch by hand. */
import type { Batch } from "../../src/kafka/consumer.ts";
import { createLogger, type LogFields, type Logger } from "../../src/log.ts";
import type { SourceRecord } from "../../src/record.ts";

export type LogLine = { level: string; msg: string } & LogFields;

/** A debug-level JSON logger whose lines are kept, parsed, in `lines`. */
export function memoryLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = createLogger({ level: "debug", format: "json", write: (line) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

/** A record of topic "t" with a text key and value. */
export function record(partition: number, offset: number, key = `k${offset}`): SourceRecord {
  const bytes = new TextEncoder();
  return {
    topic: "t",
    partition,
    offset,
    key: bytes.encode(key),
    value: bytes.encode(`{"n":${offset}}`),
    headers: { "content-type": "application/fhir+json" },
    timestamp: "0",
  };
}

/** A batch as the consumer hands it over, which keeps what the sink did with it. */
export interface FakeBatch extends Batch {
  resolved: number[];
  commits: number[];
  paused: number;
  resumed: number;
}

export function batch(
  partition: number,
  offsets: number[],
  options: { commit?: (offset: number) => Promise<void>; highWatermark?: number } = {},
): FakeBatch {
  const made: FakeBatch = {
    topic: "t",
    partition,
    records: offsets.map((offset) => record(partition, offset)),
    highWatermark: options.highWatermark ?? (offsets.at(-1) ?? 0) + 1,
    resolved: [],
    commits: [],
    paused: 0,
    resumed: 0,
    resolve: (offset) => void made.resolved.push(offset),
    commit: async (offset) => {
      await options.commit?.(offset);
      made.commits.push(offset);
    },
    pause: () => {
      made.paused++;
      return () => void made.resumed++;
    },
  };
  return made;
}

/** A promise with its resolve handle, for answers that come when the test says. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
