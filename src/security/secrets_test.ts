import assert from "node:assert/strict";
import { inspect } from "node:util";
import { REDACTED } from "../outward.ts";
import {
  readSecret,
  readStartupFile,
  Secret,
  SecretError,
  secretSource,
  type SecretSpec,
} from "./secrets.ts";

const SPEC: SecretSpec = {
  what: "the test secret",
  env: ["EVENTSINK_TEST_SECRET", "ORIGINAL_SECRET"],
  fileOption: "test-secret-file",
  credential: "test-secret",
};
const VALUE = "s3cr3t-value-42";

function files(contents: Record<string, string>) {
  return (path: string) => {
    if (path in contents) return Promise.resolve(contents[path]!);
    return Promise.reject(
      new Deno.errors.NotFound(`No such file or directory (os error 2): readfile '${path}'`),
    );
  };
}

Deno.test("secret: printing, logging or serialising a Secret never shows its value", () => {
  const secret = new Secret(VALUE);
  assert.equal(secret.reveal(), VALUE);
  for (
    const shown of [
      String(secret),
      `${secret}`,
      JSON.stringify({ secret }),
      Deno.inspect({ secret }),
      inspect({ secret }),
    ]
  ) {
    assert.ok(!shown.includes(VALUE), shown);
    assert.ok(shown.includes(REDACTED), shown);
  }
});

Deno.test("secret: a file wins over the environment, which wins over a systemd credential", () => {
  const env = (values: Record<string, string>) => (name: string) => values[name];
  const all = {
    EVENTSINK_TEST_SECRET: "ours",
    ORIGINAL_SECRET: "alias",
    CREDENTIALS_DIRECTORY: "/run/cred/x/",
  };
  assert.deepEqual(secretSource(SPEC, "/etc/secret", env(all)), { from: "file", path: "/etc/secret" });
  const fromEnv = secretSource(SPEC, undefined, env(all));
  assert.equal(fromEnv?.from, "env");
  assert.equal(fromEnv?.from === "env" && fromEnv.name, "EVENTSINK_TEST_SECRET");
  const fromAlias = secretSource(SPEC, undefined, env({ ORIGINAL_SECRET: "alias" }));
  assert.equal(fromAlias?.from === "env" && fromAlias.secret.reveal(), "alias");
  assert.deepEqual(secretSource(SPEC, undefined, env({ CREDENTIALS_DIRECTORY: "/run/cred/x/" })), {
    from: "credential",
    path: "/run/cred/x/test-secret",
  });
  assert.equal(secretSource(SPEC, undefined, env({})), undefined);
});

Deno.test("secret: read from a file without its trailing line break", async () => {
  const read = files({ "/s": `${VALUE}\n`, "/crlf": `${VALUE}\r\n` });
  for (const path of ["/s", "/crlf"]) {
    const secret = await readSecret(SPEC, { from: "file", path }, { required: true, readTextFile: read });
    assert.equal(secret?.reveal(), VALUE);
  }
});

Deno.test("secret: problems name the source, never the content", async (t) => {
  const read = files({ "/empty": "\n", "/run/cred/test-secret": "" });
  const failure = async (source: Parameters<typeof readSecret>[1]) => {
    try {
      await readSecret(SPEC, source, { required: true, readTextFile: read });
    } catch (error) {
      assert.ok(error instanceof SecretError, String(error));
      return error.message;
    }
    assert.fail("no error");
  };
  await t.step("missing file", async () => {
    const message = await failure({ from: "file", path: "/nope" });
    assert.equal(message, "Cannot read the test secret from file /nope (--test-secret-file): no such file");
  });
  await t.step("empty file", async () => {
    assert.match(
      await failure({ from: "file", path: "/empty" }),
      /the test secret in file \/empty .* is empty/,
    );
  });
  await t.step("empty variable", async () => {
    const message = await failure({ from: "env", name: "EVENTSINK_TEST_SECRET", secret: new Secret("") });
    assert.equal(message, "the test secret in EVENTSINK_TEST_SECRET is empty");
  });
  await t.step("a required systemd credential that is not there says how to give it", async () => {
    const message = await failure({ from: "credential", path: "/run/other/test-secret" });
    assert.match(
      message,
      /systemd credential \/run\/other\/test-secret: no such file; set EVENTSINK_TEST_SECRET/,
    );
  });
  await t.step("an optional one that is not there is no secret, and no error", async () => {
    const secret = await readSecret(SPEC, { from: "credential", path: "/run/other/test-secret" }, {
      required: false,
      readTextFile: read,
    });
    assert.equal(secret, undefined);
  });
});

Deno.test("start-up files: only a regular file of at most 1 MiB is read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/ok`, "pem");
    assert.equal(await readStartupFile(`${dir}/ok`), "pem");
    await Deno.writeFile(`${dir}/big`, new Uint8Array(1024 * 1024 + 1));
    await assert.rejects(() => readStartupFile(`${dir}/big`), /larger than 1 MiB \(1048577 bytes\)/);
    await assert.rejects(() => readStartupFile("/dev/zero"), /not a regular file/);
    await assert.rejects(() => readStartupFile(dir), Deno.errors.IsADirectory);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
