/** Writing the benchmark's backlog: a topic full of valid FHIR messages keyed over a set of keys. */
import { createTopic, produce, type ProduceRecord } from "../tests/support/broker.ts";
import { messageMaker, type SizeClass } from "./messages.ts";
import type { Message } from "../tests/support/pipeline.ts";

const CONTENT_TYPE = { "Content-Type": "application/fhir+json; fhirVersion=4.0" };
/**
 * Bytes per produce call. KafkaJS sends one batch per partition, and the broker takes batches up to 1 MiB
 * (message.max.bytes): 8 partitions share about 4 MB with room for the keys' uneven spread.
 */
const CHUNK_BYTES = 4_000_000;

/** What {@link produceBacklog} writes. */
export interface BacklogOptions {
  partitions: number;
  records: number;
  size: SizeClass;
  /** Records are keyed with this many distinct keys (UUIDs as text), chosen at random. */
  keys: number;
  /**
   * Distinct messages made; records beyond it reuse them in turn (a million records need not be a million
   * distinct messages: the stand-in answers a repeat 202 as well). Default: one per record.
   */
  distinct?: number;
  onProgress?: (written: number) => void;
}

/** Creates `topic` and writes the backlog to it; resolves with the total value bytes. */
export async function produceBacklog(
  bootstrap: string,
  topic: string,
  options: BacklogOptions,
): Promise<number> {
  await createTopic(bootstrap, topic, options.partitions);
  const keys = Array.from({ length: options.keys }, () => crypto.randomUUID());
  const make = await messageMaker(options.size);
  const distinct = Math.min(options.distinct ?? options.records, options.records);
  const pool: Message[] = [];
  const messageAt = (i: number): Message => {
    if (i < distinct) {
      const made = make();
      if (distinct < options.records) pool.push(made);
      return made;
    }
    return pool[i % distinct]!;
  };
  let bytes = 0;
  let chunk: ProduceRecord[] = [];
  let chunkBytes = 0;
  for (let i = 0; i < options.records; i++) {
    const value = messageAt(i).bytes;
    const key = keys[Math.floor(Math.random() * keys.length)]!;
    chunk.push({ key, value, headers: CONTENT_TYPE });
    chunkBytes += value.length;
    bytes += value.length;
    if (chunkBytes >= CHUNK_BYTES || i === options.records - 1) {
      await produce(bootstrap, topic, chunk);
      chunk = [];
      chunkBytes = 0;
      options.onProgress?.(i + 1);
    }
  }
  return bytes;
}
