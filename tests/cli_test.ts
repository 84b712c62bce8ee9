/** eventsink's command line as a user meets it: help, version, usage errors and exit codes. */
import assert from "node:assert/strict";
import { ENV_NAMES, OPTIONS } from "../src/config/options.ts";
import { testBroker } from "./support/broker.ts";
import { spawnRaw } from "./support/eventsink_process.ts";

async function runToEnd(args: string[], env: Record<string, string> = {}) {
  const process = await spawnRaw(args, env);
  try {
    const code = await process.exited(30_000);
    return { code, output: process.output() };
  } finally {
    await process.close();
  }
}

Deno.test("cli: --help lists every option and exits 0", async () => {
  const { code, output } = await runToEnd(["--help"]);
  assert.equal(code, 0);
  for (const flag of ["--brokers", "--topic", "--eventstore-url", "--on-rejected", "--from-beginning"]) {
    assert.ok(output.includes(flag), `${flag} missing from --help`);
  }
  assert.match(output, /HOPS_EVENTSTORE_BASE_URL/);
});

Deno.test("cli: --help (stdout not a terminal) fits 80 columns and loses nothing; `help` is the same", async () => {
  const { code, output } = await runToEnd(["--help"]);
  assert.equal(code, 0);
  const wide = output.split("\n").filter((line) => line.length > 80);
  assert.deepEqual(wide, [], "lines wider than 80 columns");
  for (const option of OPTIONS) assert.ok(output.includes(`--${option.flag}`), `--${option.flag} missing`);
  for (const name of ENV_NAMES) assert.ok(output.includes(name), `${name} missing`);
  const help = await runToEnd(["help"]);
  assert.equal(help.code, 0);
  assert.equal(help.output, output);
});

Deno.test("cli: --version", async () => {
  const { code, output } = await runToEnd(["--version"]);
  assert.equal(code, 0);
  assert.match(output, /^eventsink \d+\.\d+\.\d+\S*\ndeno \S+\nv8 \S+\ntypescript \S+\nkafkajs 2\.2\.4\n$/);
});

Deno.test("cli: usage errors exit 2 with a message that says what to fix", async (t) => {
  await t.step("unknown flag: the nearest known one is suggested", async () => {
    const { code, output } = await runToEnd(["--borkers", "x"]);
    assert.equal(code, 2);
    assert.match(output, /^eventsink: Unknown option '--borkers': did you mean --brokers\?\n/);
    assert.match(output, /eventsink --help/);
  });
  await t.step("unknown command: the nearest one is suggested", async () => {
    const { code, output } = await runToEnd(["chek"]);
    assert.equal(code, 2);
    assert.match(output, /^eventsink: unknown command 'chek': did you mean check\?\n/);
  });
  await t.step("a value that does not parse: one error, naming where it came from", async () => {
    const DURATION = 'must be a duration of at least 1ms such as 500ms, 5s, 2m; got "5"';
    const flag = await runToEnd(["--eventstore-url", "http://127.0.0.1:9", "--retry-max", "5"]);
    assert.equal(flag.code, 2);
    assert.equal(
      flag.output,
      `eventsink: --retry-max ${DURATION}\nRun 'eventsink --help' for the options.\n`,
    );
    const env = await runToEnd([], {
      EVENTSINK_EVENTSTORE_URL: "http://127.0.0.1:9",
      EVENTSINK_RETRY_MAX: "5",
    });
    assert.equal(env.code, 2);
    assert.equal(
      env.output,
      `eventsink: EVENTSINK_RETRY_MAX ${DURATION}\nRun 'eventsink --help' for the options.\n`,
    );
  });
  await t.step("no EventStore URL", async () => {
    const { code, output } = await runToEnd([]);
    assert.equal(code, 2);
    assert.match(output, /--eventstore-url is required/);
  });
  await t.step("a bad value from the environment (the original's variable name)", async () => {
    const { code, output } = await runToEnd([], { HOPS_EVENTSTORE_BASE_URL: "not a url" });
    assert.equal(code, 2);
    assert.match(output, /"not a url" is not a URL/);
  });
});

Deno.test("cli: a broker that cannot be reached at start-up is named, exit 1", async () => {
  // A port nothing listens on: bind one and close it again.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const { code, output } = await runToEnd([
    "--brokers",
    `127.0.0.1:${port}`,
    "--eventstore-url",
    "http://127.0.0.1:9",
    "--log-format",
    "json",
  ], { KAFKAJS_NO_PARTITIONER_WARNING: "1" });
  assert.equal(code, 1);
  assert.match(output, new RegExp(`Cannot start: Kafka at 127\\.0\\.0\\.1:${port} did not answer`));
});

Deno.test("cli: a topic that does not exist is named, exit 1", async () => {
  const { code, output } = await runToEnd([
    "--brokers",
    testBroker().bootstrap,
    "--topic",
    "no.such.topic",
    "--eventstore-url",
    "http://127.0.0.1:9",
  ]);
  assert.equal(code, 1);
  assert.match(output, /Cannot start: topic "no\.such\.topic" does not exist/);
});
