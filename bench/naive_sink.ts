/**
 * The baseline: a sink written the obvious way, as the original service was — KafkaJS `eachMessage`, one
 * `await fetch` per record, strictly one at a time, offsets committed by the client's timer.
 *
 *   deno run -A bench/naive_sink.ts <bootstrap> <topic> <group> <eventstore-url>
 */
import { kafkaClient } from "../tests/support/broker.ts";

const [bootstrap, topic, group, url] = Deno.args;
if (!bootstrap || !topic || !group || !url) {
  console.error("usage: naive_sink.ts <bootstrap> <topic> <group> <eventstore-url>");
  Deno.exit(2);
}
const endpoint = `${url}/fhir/4.0/$process-message`;
const consumer = kafkaClient(bootstrap).consumer({ groupId: group });
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
await consumer.run({
  eachMessage: async ({ message }) => {
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": message.headers?.["Content-Type"]?.toString() ?? "application/fhir+json" },
      body: message.value as Uint8Array<ArrayBuffer> | null,
    });
    await response.arrayBuffer();
    // As the original: invalid messages are skipped, anything else fails (KafkaJS retries the message).
    if (!response.ok && response.status !== 400 && response.status !== 422) {
      throw new Error(`EventStore answered ${response.status}`);
    }
  },
});
console.log(JSON.stringify({ ready: true }));
