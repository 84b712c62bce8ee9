/**
 * Kafka security against a real broker with an SSL listener that requires client certificates and a
 * SASL_SSL listener (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN), certificates made with openssl: eventsink as
 * its own process, with its permission set.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Broker, createTopic, produce, startBroker, uniqueName } from "./support/broker.ts";
import { startEventStore } from "./support/eventstore.ts";
import { assertNoSecretPrinted, spawnEventsink, spawnRaw } from "./support/eventsink_process.ts";
import { makeTestPki, type TestPki } from "./support/pki.ts";
import { validMessages, waitUntilCommittedToEnd } from "./support/pipeline.ts";
import { registerSecrets } from "./support/secret_scan.ts";

const SASL_USER = "eventsink";
const SASL_PASSWORD = `sasl-${crypto.randomUUID()}`;
const WRONG_PASSWORD = `wrong-${crypto.randomUUID()}`;
registerSecrets(SASL_PASSWORD, WRONG_PASSWORD);

let pki: TestPki;
let broker: Broker;

Deno.test.beforeAll(async () => {
  pki = await makeTestPki();
  // Both keys are given to eventsink in these tests (the server's as a wrong --kafka-key).
  for (const key of [pki.client.key, pki.server.key]) {
    registerSecrets(...keyLines(await Deno.readTextFile(key)));
  }
  broker = await startBroker({
    secure: { keystore: pki.server.keystore, truststore: pki.ca, users: { [SASL_USER]: SASL_PASSWORD } },
  });
});

Deno.test.afterAll(async () => {
  await broker?.stop();
  await pki?.close();
});

/**
 * Writes `count` messages to a fresh topic (over PLAINTEXT), runs eventsink against `bootstrap` until
 * every message is stored and committed, and stops it cleanly.
 */
async function deliverThrough(
  bootstrap: string,
  options: { count: number; args?: string[]; env?: Record<string, string> },
): Promise<void> {
  const topic = uniqueName("fhir-secure");
  await createTopic(broker.bootstrap, topic, 2);
  const messages = await validMessages(options.count);
  await produce(broker.bootstrap, topic, messages.map((m) => ({ key: m.messageId, value: m.bytes })));
  await using store = await startEventStore();
  const group = uniqueName("group");
  const sink = await spawnEventsink({ bootstrap, topic, group, store, args: options.args, env: options.env });
  try {
    await store.waitForStored(options.count, { timeoutMs: 30_000 });
    await waitUntilCommittedToEnd(broker.bootstrap, group, topic);
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(), 0);
  } finally {
    await sink.close();
  }
}

async function runToEnd(args: string[], env: Record<string, string> = {}) {
  const process = await spawnRaw(args, env);
  try {
    return { code: await process.exited(30_000), output: process.output() };
  } finally {
    await process.close();
  }
}

/** Flags that point eventsink at a port nothing listens on: whatever happens there happens before connecting. */
function nowhere(): string[] {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return ["--brokers", `127.0.0.1:${port}`, "--eventstore-url", "http://127.0.0.1:9"];
}

Deno.test("kafka tls: client certificates named by the original's variables; delivered and committed", async () => {
  await deliverThrough(broker.secure!.ssl, {
    count: 6,
    env: {
      KAFKA_SECURITY_ENABLED: "true",
      KAFKA_CA_PATH: pki.ca,
      KAFKA_CERTIFICATE_PATH: pki.client.cert,
      KAFKA_PRIVATE_KEY_PATH: pki.client.key,
    },
  });
});

Deno.test("kafka sasl: SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN over TLS, the password from each kind of source", async (t) => {
  const sasl = (mechanism: string) => [
    "--kafka-tls",
    "--kafka-ca",
    pki.ca,
    "--kafka-sasl-mechanism",
    mechanism,
    "--kafka-sasl-username",
    SASL_USER,
  ];
  await t.step("SCRAM-SHA-512, password as a systemd credential", async () => {
    const credentials = await Deno.makeTempDir({ prefix: "eventsink-credentials-" });
    try {
      await Deno.writeTextFile(join(credentials, "kafka-sasl-password"), `${SASL_PASSWORD}\n`);
      await deliverThrough(broker.secure!.saslSsl, {
        count: 6,
        args: sasl("scram-sha-512"),
        env: { CREDENTIALS_DIRECTORY: credentials },
      });
    } finally {
      await Deno.remove(credentials, { recursive: true });
    }
  });
  await t.step("SCRAM-SHA-256, password from a file", async () => {
    const file = await Deno.makeTempFile({ prefix: "eventsink-sasl-" });
    try {
      await Deno.writeTextFile(file, SASL_PASSWORD);
      await deliverThrough(broker.secure!.saslSsl, {
        count: 2,
        args: [...sasl("scram-sha-256"), "--kafka-sasl-password-file", file],
      });
    } finally {
      await Deno.remove(file);
    }
  });
  await t.step("PLAIN, password from the environment", async () => {
    await deliverThrough(broker.secure!.saslSsl, {
      count: 2,
      args: sasl("plain"),
      env: { EVENTSINK_KAFKA_SASL_PASSWORD: SASL_PASSWORD },
    });
  });
});

Deno.test("kafka sasl: a wrong password is named at start-up (exit 1), never printed", async () => {
  const { code, output } = await runToEnd([
    ...["--brokers", broker.secure!.saslSsl, "--eventstore-url", "http://127.0.0.1:9", "--kafka-tls"],
    ...["--kafka-ca", pki.ca, "--kafka-sasl-mechanism", "scram-sha-512", "--kafka-sasl-username", SASL_USER],
  ], { EVENTSINK_KAFKA_SASL_PASSWORD: WRONG_PASSWORD });
  assert.equal(code, 1, output);
  assert.match(output, /Cannot start: Kafka at 127\.0\.0\.1:\d+ refused eventsink's SASL credentials/);
});

Deno.test("kafka tls: a CA that did not sign the broker's certificate, or no client certificate, is a clear TLS error", async (t) => {
  const run = (files: string[]) =>
    runToEnd([
      "--brokers",
      broker.secure!.ssl,
      "--eventstore-url",
      "http://127.0.0.1:9",
      "--kafka-tls",
      ...files,
    ]);
  await t.step("wrong CA", async () => {
    const { code, output } = await run([
      "--kafka-ca",
      pki.otherCa,
      "--kafka-cert",
      pki.client.cert,
      "--kafka-key",
      pki.client.key,
    ]);
    assert.equal(code, 1, output);
    assert.match(
      output,
      /TLS: the server's certificate is not signed by a CA eventsink trusts \(check --kafka-ca\)/,
    );
  });
  await t.step("no client certificate", async () => {
    const { code, output } = await run(["--kafka-ca", pki.ca]);
    assert.equal(code, 1, output);
    assert.match(
      output,
      /TLS: the server refused eventsink's client certificate, or wanted one and got none/,
    );
  });
});

Deno.test("tls files: unreadable or mismatched certificate files end eventsink at start-up (exit 2), by path, before connecting", async (t) => {
  const expectExit2 = async (args: string[], expected: RegExp) => {
    const { code, output } = await runToEnd([...nowhere(), ...args]);
    assert.equal(code, 2, output);
    assert.match(output, expected);
    assert.doesNotMatch(output, /did not answer/, "eventsink must not have tried to connect");
  };
  await t.step("a CA file that is not there", () =>
    expectExit2(
      ["--kafka-tls", "--kafka-ca", "/nonexistent/kafka-ca.pem"],
      /--kafka-ca \/nonexistent\/kafka-ca\.pem: cannot read it: no such file/,
    ));
  await t.step("a key that belongs to another certificate", () =>
    expectExit2(
      ["--kafka-tls", "--kafka-cert", pki.client.cert, "--kafka-key", pki.server.key],
      /--kafka-key \S+server\.key is not the private key of the certificate in --kafka-cert \S+client\.pem/,
    ));
  await t.step("the EventStore's client certificate swapped with its key", () =>
    expectExit2(
      ["--eventstore-cert", pki.client.key, "--eventstore-key", pki.client.cert],
      /--eventstore-cert \S+client\.key: holds a private key, not a certificate/,
    ));
  await t.step("a secret file that is not there", () =>
    expectExit2(
      [
        ...["--kafka-tls", "--kafka-sasl-mechanism", "scram-sha-512", "--kafka-sasl-username", SASL_USER],
        ...["--kafka-sasl-password-file", "/nonexistent/sasl-password"],
      ],
      /Cannot read the Kafka SASL password from file \/nonexistent\/sasl-password \(--kafka-sasl-password-file\): no such file/,
    ));
});

Deno.test("kafka security: --help and the start-up configuration show no secret", async () => {
  const { code, output } = await runToEnd(["--help"], { EVENTSINK_KAFKA_SASL_PASSWORD: SASL_PASSWORD });
  assert.equal(code, 0);
  assert.match(output, /--kafka-sasl-password-file/);
  const { output: started } = await runToEnd(
    [...nowhere(), "--kafka-tls", "--kafka-sasl-mechanism", "plain", "--kafka-sasl-username", SASL_USER],
    { EVENTSINK_KAFKA_SASL_PASSWORD: SASL_PASSWORD },
  );
  assert.match(started, /kafkaSaslPassword="\[redacted\] \(env EVENTSINK_KAFKA_SASL_PASSWORD\)"/);
});

Deno.test("kafka security: nothing eventsink printed in these tests holds a password or key", async () => {
  const lines = keyLines(await Deno.readTextFile(pki.client.key));
  assert.ok(lines.length > 0);
  assertNoSecretPrinted([SASL_PASSWORD, WRONG_PASSWORD, ...lines]);
});

/** A PEM key's base64 lines: each is secret (the run's secret scan looks for them). */
function keyLines(pem: string): string[] {
  return pem.split("\n").filter((line) => line.length >= 20 && !line.startsWith("-----"));
}
