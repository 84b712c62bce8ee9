/** Reads a whole topic back, as a user would inspect a dead-letter topic. */
import { Buffer } from "node:buffer";
import { endOffsets, kafkaClient, uniqueName } from "./broker.ts";

/** A record read back, with headers as raw bytes. */
export interface ReadRecord {
  partition: number;
  offset: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  /** Every value of each header name, in order. */
  headers: Record<string, Uint8Array[]>;
}

/** Every record of `topic` up to its current end, in offset order per partition. */
export async function readTopic(bootstrap: string, topic: string, timeoutMs = 20_000): Promise<ReadRecord[]> {
  const ends = await endOffsets(bootstrap, topic);
  const pending = new Set([...ends].filter(([, end]) => end > 0).map(([partition]) => partition));
  const records: ReadRecord[] = [];
  if (pending.size === 0) return records;
  const consumer = kafkaClient(bootstrap).consumer({ groupId: uniqueName("reader"), maxWaitTimeInMs: 200 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const done = new Promise<void>((resolve) => {
      consumer.run({
        eachMessage: ({ partition, message }) => {
          const offset = Number(message.offset);
          if (offset < ends.get(partition)!) {
            records.push({
              partition,
              offset,
              key: message.key === null ? null : new Uint8Array(message.key),
              value: message.value === null ? null : new Uint8Array(message.value),
              headers: Object.fromEntries(
                Object.entries(message.headers ?? {}).map(([name, value]) => [name, toBytes(value)]),
              ),
            });
          }
          if (offset >= ends.get(partition)! - 1) pending.delete(partition);
          if (pending.size === 0) resolve();
          return Promise.resolve();
        },
      });
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`reading ${topic} took over ${timeoutMs} ms`)), timeoutMs);
    });
    await Promise.race([done, timeout]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
  }
  return records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

function toBytes(value: unknown): Uint8Array[] {
  if (Array.isArray(value)) return value.flatMap(toBytes);
  if (typeof value === "string") return [new TextEncoder().encode(value)];
  return [new Uint8Array(value as Buffer)];
}

/** A header's (first) value as text. */
export function headerText(record: ReadRecord, name: string): string | undefined {
  const value = record.headers[name]?.[0];
  return value === undefined ? undefined : new TextDecoder().decode(value);
}
