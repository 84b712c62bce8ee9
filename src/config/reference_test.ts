import assert from "node:assert/strict";
import { OPTIONS } from "./options.ts";
import { optionsTable } from "./reference.ts";

Deno.test("reference: one table row per option, its cells escaped for markdown", () => {
  const lines = optionsTable().split("\n");
  assert.equal(lines[0], "| flag | environment (alias) | default | meaning |");
  assert.equal(lines.length, 2 + OPTIONS.length);
  assert.equal(
    lines[2],
    "| `--brokers <host:port,…>` | `EVENTSINK_BROKERS` (`KAFKA_BROKERS`) | `localhost:9092` | " +
      "Kafka bootstrap brokers, comma-separated. |",
  );
  const rejected = lines.find((line) => line.startsWith("| `--on-rejected"))!;
  assert.match(
    rejected,
    /^\| `--on-rejected <dead-letter\\\|skip\\\|stop>` \| `EVENTSINK_ON_REJECTED` \| {2}\| /,
  );
  assert.match(
    lines.find((line) => line.startsWith("| `--from-beginning`"))!,
    / \| off \| .*&lt;group&gt;\.replay/,
  );
  assert.match(
    lines.find((line) => line.startsWith("| `--kafka-sasl-password-file"))!,
    / \| `EVENTSINK_KAFKA_SASL_PASSWORD_FILE`; the secret itself: `EVENTSINK_KAFKA_SASL_PASSWORD`, or credential `kafka-sasl-password` \| {2}\| /,
  );
  // Every row has its four cells: no unescaped | inside one.
  for (const line of lines) assert.equal(line.split(/(?<!\\)\|/).length, 6, line);
});
