/** Start-up checks of certificate and key files, on a PKI made with openssl. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTlsFiles, TlsFileError, type TlsFiles } from "./tls_files.ts";
import { runTool } from "../../tests/support/jvm.ts";
import { makeTestPki, type TestPki } from "../../tests/support/pki.ts";

const DAY_MS = 86_400_000;

function load(files: TlsFiles, now = new Date()) {
  return loadTlsFiles(files, { option: "--kafka", readTextFile: Deno.readTextFile, now });
}

async function problems(files: TlsFiles, now = new Date()): Promise<string> {
  try {
    await load(files, now);
  } catch (error) {
    assert.ok(error instanceof TlsFileError, String(error));
    return error.message;
  }
  assert.fail("no problem found");
}

async function withPki(fn: (pki: TestPki) => Promise<void>): Promise<void> {
  await using pki = await makeTestPki();
  await fn(pki);
}

Deno.test("tls files: a CA bundle, a client certificate and its key are read and checked", () =>
  withPki(async (pki) => {
    const bundle = join(pki.dir, "bundle.pem");
    await Deno.writeTextFile(
      bundle,
      (await Deno.readTextFile(pki.ca)) + (await Deno.readTextFile(pki.otherCa)),
    );
    const material = await load({ ca: bundle, cert: pki.client.cert, key: pki.client.key });
    assert.equal(material.ca?.length, 2);
    assert.match(material.cert!, /BEGIN CERTIFICATE/);
    assert.match(material.key!, /BEGIN PRIVATE KEY/);
    assert.deepEqual(await load({}), {});
  }));

Deno.test("tls files: every problem is named by option, path and reason", () =>
  withPki(async (pki) => {
    const message = await problems({
      ca: join(pki.dir, "missing.pem"),
      cert: pki.client.key,
      key: pki.client.cert,
    });
    assert.match(message, /^--kafka-ca .*missing\.pem: cannot read it: no such file$/m);
    assert.match(message, /^--kafka-cert .*client\.key: holds a private key, not a certificate$/m);
    assert.match(message, /^--kafka-key .*client\.pem: holds a certificate, not a private key$/m);
  }));

Deno.test("tls files: a key that belongs to another certificate", () =>
  withPki(async (pki) => {
    const message = await problems({ cert: pki.client.cert, key: pki.server.key });
    assert.equal(
      message,
      `--kafka-key ${pki.server.key} is not the private key of the certificate in --kafka-cert ${pki.client.cert}`,
    );
  }));

Deno.test("tls files: an expired certificate, an encrypted key, a file that is no PEM", () =>
  withPki(async (pki) => {
    const later = new Date(Date.now() + 3 * DAY_MS); // the test certificates live two days
    assert.match(
      await problems({ cert: pki.client.cert, key: pki.client.key }, later),
      /certificate expired on/,
    );
    const encrypted = join(pki.dir, "encrypted.key");
    const args = ["pkey", "-in", pki.client.key, "-aes256", "-passout", "pass:xyzzy", "-out", encrypted];
    assert.equal((await runTool("openssl", args, "openssl")).code, 0);
    assert.match(
      await problems({ cert: pki.client.cert, key: encrypted }),
      /the key is encrypted; eventsink reads/,
    );
    const text = join(pki.dir, "notes.txt");
    await Deno.writeTextFile(text, "not a certificate\n");
    assert.match(await problems({ ca: text }), /--kafka-ca .*notes\.txt: holds no PEM certificate/);
  }));
