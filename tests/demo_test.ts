/** `make demo` (tests/support/demo.ts): the pipeline it shows, on the test broker, and what it tells the reader. */
import assert from "node:assert/strict";
import { testBroker, uniqueName } from "./support/broker.ts";
import { countDownload, type Downloads, runDemo } from "./support/demo.ts";

const README = new URL("../README.md", import.meta.url);

Deno.test("demo: every record ends where the demo says, and it prints the command and the next steps", async () => {
  const { bootstrap } = testBroker();
  const topic = uniqueName("demo");
  const group = uniqueName("demo-group");
  const printed: string[] = [];
  const result = await runDemo({
    bootstrap,
    topic,
    group,
    print: (line) => printed.push(line),
    interrupted: new AbortController().signal,
  });
  const output = printed.join("\n");
  assert.equal(result.exitCode, 0, output);

  // The example messages are stored byte for byte, the re-delivery is not stored twice, the rest is refused.
  const outcomes = result.rows.map((row) => `${row.label}: ${row.outcome}`);
  const stored = outcomes.filter((o) => /stored by the EventStore \(\d+ bytes, byte-identical\)$/.test(o));
  assert.equal(stored.length, 3, outcomes.join("\n"));
  assert.ok(outcomes.some((o) => o.startsWith("the patient link again") && o.endsWith("not stored twice")));
  assert.deepEqual(
    result.rows.filter((row) => row.status !== 202).map((row) => row.status).sort(),
    [409, 415, 422, 422],
  );
  assert.match(output, /readiness: curl -s http:\/\/127\.0\.0\.1:\d+\/readyz → 200 ok: consuming/);

  // The command it prints is the one it ran, and names the test broker and the demo's topic.
  const args = result.eventsinkArgs.join(" ");
  assert.ok(output.includes(`make run ARGS="${args}"`), output);
  assert.ok(output.includes(`  eventsink ${args}\n`), output);
  assert.match(
    args,
    new RegExp(`--brokers ${bootstrap} --topic ${topic} --group ${group} --eventstore-url http`),
  );

  // The next steps name README sections that exist.
  const headings = (await Deno.readTextFile(README)).split("\n").filter((l) => l.startsWith("## "));
  const named = [...output.matchAll(/^ {2}\d\. "([^"]+)"/gm)].map((m) => m[1]!);
  assert.deepEqual(named, [
    "Install",
    "First run against your Kafka and EventStore",
    "Running as a systemd service",
  ]);
  for (const name of named) assert.ok(headings.includes(`## ${name}`), `README has no section "${name}"`);
});

Deno.test("demo: Maven's transfer log is counted as the progress of the first fetch", () => {
  const downloads: Downloads = { files: 0, bytes: 0, latest: undefined };
  const log = [
    "[INFO] Downloading from central: https://repo.maven.apache.org/maven2/org/apache/kafka/kafka_2.13/4.4.0/kafka_2.13-4.4.0.pom",
    "[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/apache/kafka/kafka_2.13/4.4.0/kafka_2.13-4.4.0.pom (3.1 kB at 12 kB/s)",
    "[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/apache/kafka/kafka_2.13/4.4.0/kafka_2.13-4.4.0.jar (6.4 MB at 2.1 MB/s)",
    "[INFO] Downloaded from mirror: https://mirror.example.org/maven2/a/b/1/b-1.pom (558 B at 4 kB/s)",
    "[INFO] BUILD SUCCESS",
  ];
  for (const line of log) countDownload(line, downloads);
  assert.equal(downloads.files, 3);
  assert.equal(Math.round(downloads.bytes), 3_100 + 6_400_000 + 558);
  assert.equal(downloads.latest, "kafka_2.13-4.4.0.jar");
});
