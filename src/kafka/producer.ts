import { Buffer } from "node:buffer";
import { type IHeaders, type Kafka, Partitioners, type Producer as KafkaProducer } from "kafkajs";
import type { HeaderValue, OutgoingRecord } from "../record.ts";

/** Writes records to Kafka (the dead letters). */
export interface Producer {
  /** Writes one record and resolves once every in-sync replica has it (acks=all, idempotent producer). */
  publish(topic: string, record: OutgoingRecord): Promise<void>;
}

/**
 * A producer made and connected on the first publish only. Idempotent with acks=all: a dead letter KafkaJS
 * retries is written once, and only acknowledged when safe. `close` disconnects it if it was used.
 */
export function createProducer(kafka: Kafka): Producer & { close(): Promise<void> } {
  let producer: KafkaProducer | undefined;
  let connected: Promise<void> | undefined;
  return {
    async publish(topic, record) {
      const writer = producer ??= kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        // Once connected, a send is retried by KafkaJS until the broker takes it, so that its idempotence
        // writes the dead letter exactly once; writeDeadLetter stops waiting when eventsink stops.
        retry: { retries: Number.MAX_SAFE_INTEGER },
      });
      // A failed connect is forgotten, so that the next attempt connects afresh.
      connected ??= writer.connect().catch((error) => {
        connected = undefined;
        throw error;
      });
      await connected;
      await writer.send({
        topic,
        acks: -1,
        messages: [{
          key: asBuffer(record.key),
          value: asBuffer(record.value),
          headers: asHeaders(record.headers),
        }],
      });
    },
    async close() {
      if (connected) await producer?.disconnect();
    },
  };
}

/** KafkaJS wants Buffers; ours are Uint8Array views, wrapped without copying. */
function asBuffer(bytes: Uint8Array | null): Buffer | null {
  return bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function asHeaders(headers: Record<string, HeaderValue>): IHeaders {
  const one = (value: Uint8Array | string) => (typeof value === "string" ? value : asBuffer(value)!);
  const converted: IHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) converted[name] = Array.isArray(value) ? value.map(one) : one(value);
  }
  return converted;
}
