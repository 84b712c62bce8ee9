/**
 * The consume-only ceiling: KafkaJS `eachBatch` over the topic, no HTTP at all, with the consumer settings
 * eventsink uses (src/kafka/). Prints a JSON line {"records", "at"} every 20 ms while records come.
 *
 *   deno run -A bench/consume_only.ts <bootstrap> <topic> <group>
 */
import { kafkaClient } from "../tests/support/broker.ts";

const REPORT_EVERY_MS = 20;
const [bootstrap, topic, group] = Deno.args;
if (!bootstrap || !topic || !group) {
  console.error("usage: consume_only.ts <bootstrap> <topic> <group>");
  Deno.exit(2);
}
let records = 0;
let lastAt = 0;
let reported = -1;
const consumer = kafkaClient(bootstrap).consumer({
  groupId: group,
  sessionTimeout: 30_000,
  heartbeatInterval: 3_000,
  maxWaitTimeInMs: 500,
  allowAutoTopicCreation: false,
});
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
await consumer.run({
  eachBatchAutoResolve: false,
  eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
    // Touch every value, as a sink would when it hands the bytes on.
    for (const message of batch.messages) if (message.value) records++;
    lastAt = Date.now();
    const last = batch.messages.at(-1);
    if (last) resolveOffset(last.offset);
    await heartbeat();
  },
});
console.log(JSON.stringify({ ready: true }));
setInterval(() => {
  if (records === reported) return;
  reported = records;
  console.log(JSON.stringify({ records, at: lastAt }));
}, REPORT_EVERY_MS);
