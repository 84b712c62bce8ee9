/**
 * The consume-only ceiling: the topic read through a Kafka client, no HTTP at all. `kafkajs` is eventsink's
 * client with the consumer settings eventsink uses (src/kafka/); `platformatic` is @platformatic/kafka with
 * the same fetch settings, measured beside it to see what another pure-JavaScript client would change.
 * Prints a JSON line {"records", "at"} every 20 ms while records come.
 *
 *   deno run -A bench/consume_only.ts <kafkajs|platformatic> <bootstrap> <topic> <group>
 */
import { Consumer } from "@platformatic/kafka";
import { CONSUMER_SETTINGS } from "../src/kafka/consumer.ts";
import { kafkaClient } from "../tests/support/broker.ts";

const REPORT_EVERY_MS = 20;
const [client, bootstrap, topic, group] = Deno.args;
if ((client !== "kafkajs" && client !== "platformatic") || !bootstrap || !topic || !group) {
  console.error("usage: consume_only.ts <kafkajs|platformatic> <bootstrap> <topic> <group>");
  Deno.exit(2);
}
let records = 0;
let lastAt = 0;
let reported = -1;
// Touch every value, as a sink would when it hands the bytes on.
const seen = (value: Uint8Array | null) => {
  if (value) records++;
  lastAt = Date.now();
};
if (client === "kafkajs") {
  const consumer = kafkaClient(bootstrap).consumer({ groupId: group, ...CONSUMER_SETTINGS });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: ({ batch, resolveOffset }) => {
      for (const message of batch.messages) seen(message.value);
      const last = batch.messages.at(-1);
      if (last) resolveOffset(last.offset);
      return Promise.resolve();
    },
  });
} else {
  const consumer = new Consumer({
    clientId: "eventsink-bench",
    groupId: group,
    bootstrapBrokers: [bootstrap],
    sessionTimeout: CONSUMER_SETTINGS.sessionTimeout,
    heartbeatInterval: CONSUMER_SETTINGS.heartbeatInterval,
    maxWaitTime: CONSUMER_SETTINGS.maxWaitTimeInMs,
    maxBytesPerPartition: CONSUMER_SETTINGS.maxBytesPerPartition,
    autocommit: false,
  });
  const stream = await consumer.consume({ topics: [topic], mode: "earliest" });
  stream.on("data", (message) => seen(message.value));
}
console.log(JSON.stringify({ ready: true }));
setInterval(() => {
  if (records === reported) return;
  reported = records;
  console.log(JSON.stringify({ records, at: lastAt }));
}, REPORT_EVERY_MS);
