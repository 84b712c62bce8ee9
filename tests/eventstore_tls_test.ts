/**
 * TLS to the EventStore: the stand-in behind a TLS terminator with the test PKI's server certificate,
 * optionally requiring a client certificate; eventsink as its own process against the shared broker.
 */
import assert from "node:assert/strict";
import { committedOffsets, produce } from "./support/broker.ts";
import { assertNoSecretPrinted, spawnEventsink } from "./support/eventsink_process.ts";
import { makeTestPki, type TestPki } from "./support/pki.ts";
import { registerSecrets } from "./support/secret_scan.ts";
import { openPipeline, type Pipeline, validMessages, waitUntilCommittedToEnd } from "./support/pipeline.ts";
import { startTlsTerminator } from "./support/tls_terminator.ts";

let pki: TestPki;

Deno.test.beforeAll(async () => {
  pki = await makeTestPki();
  registerSecrets(...keyLines(await Deno.readTextFile(pki.client.key)));
});

/** A PEM key's base64 lines: each is secret (the run's secret scan looks for them). */
function keyLines(pem: string): string[] {
  return pem.split("\n").filter((line) => line.length >= 20 && !line.startsWith("-----"));
}

Deno.test.afterAll(async () => {
  await pki?.close();
});

async function writeMessages(p: Pipeline, count: number): Promise<void> {
  const messages = await validMessages(count);
  await produce(p.bootstrap, p.topic, messages.map((m) => ({ key: m.messageId, value: m.bytes })));
}

Deno.test("eventstore tls: a private CA and a client certificate", async () => {
  await using p = await openPipeline(2);
  await using terminator = await startTlsTerminator(p.store.url, { ...pki.server, clientCa: pki.ca });
  await writeMessages(p, 6);
  const sink = await spawnEventsink({
    ...p,
    store: { url: terminator.url },
    args: [
      "--eventstore-ca",
      pki.ca,
      "--eventstore-cert",
      pki.client.cert,
      "--eventstore-key",
      pki.client.key,
    ],
  });
  try {
    await p.store.waitForStored(6, { timeoutMs: 30_000 });
    assert.ok(terminator.clientCertificates().length > 0);
    assert.ok(terminator.clientCertificates().every((subject) => subject === "eventsink"));
    await waitUntilCommittedToEnd(p.bootstrap, p.group, p.topic);
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(), 0);
  } finally {
    await sink.close();
  }
});

Deno.test("eventstore tls: certificate problems are configuration faults with a clear TLS error; nothing is skipped", async (t) => {
  const refused = async (options: { clientCa?: string; args: string[] }, expected: RegExp) => {
    await using p = await openPipeline(1);
    await using terminator = await startTlsTerminator(p.store.url, {
      ...pki.server,
      clientCa: options.clientCa,
    });
    await writeMessages(p, 2);
    // Giving up on transient failures after a second must not apply: a configuration fault is never given up.
    const sink = await spawnEventsink({
      ...p,
      store: { url: terminator.url },
      args: [...options.args, "--retry-give-up", "1s", "--shutdown-grace", "1s"],
    });
    try {
      const fault = await sink.waitForLog((l) =>
        l.level === "error" && l.msg.startsWith("Configuration fault")
      );
      assert.match(String(fault.reason), expected);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      assert.equal(p.store.requests().length, 0);
      assert.ok(!sink.lines.some((l) => l.msg.startsWith("Skipped")), "nothing skipped");
      const committed = await committedOffsets(p.bootstrap, p.group, p.topic);
      assert.ok(![...committed.values()].some((offset) => offset > 0), "nothing committed");
      sink.signal("SIGTERM");
      assert.equal(await sink.exited(), 0);
    } finally {
      await sink.close();
    }
  };
  await t.step("a server certificate from a CA eventsink was not told to trust", () =>
    refused(
      { args: ["--eventstore-ca", pki.otherCa] },
      /^Cannot connect to the EventStore: TLS: the server's certificate is not signed by a CA eventsink trusts \(check --eventstore-ca\)/,
    ));
  await t.step("no client certificate where the server requires one", () =>
    refused(
      { clientCa: pki.ca, args: ["--eventstore-ca", pki.ca] },
      /TLS: the server refused eventsink's client certificate, or wanted one and got none \(check --eventstore-cert\)/,
    ));
});

Deno.test("eventstore tls: nothing eventsink printed holds the client key", async () => {
  assertNoSecretPrinted(keyLines(await Deno.readTextFile(pki.client.key)));
});
