/** Versions: what a build from git reports, and the --version text. */
import assert from "node:assert/strict";
import { releaseVersion, VERSIONS, versionText } from "../src/version.ts";
import { permissionFlags } from "./support/eventsink_process.ts";

Deno.test("version: from a release tag, from a commit, from source", () => {
  assert.equal(releaseVersion("0.1.0", "v0.2.0"), "0.2.0");
  assert.equal(releaseVersion("0.1.0", "v0.2.0-3-gabc1234-dirty"), "0.2.0-3-gabc1234-dirty");
  assert.equal(releaseVersion("0.1.0", "abc1234"), "0.1.0+abc1234");
  assert.equal(releaseVersion("0.1.0", undefined), "0.1.0-dev");
});

Deno.test("version: --version names eventsink, Deno, V8, TypeScript and KafkaJS", () => {
  assert.equal(
    versionText({ eventsink: "0.1.0", deno: "2.9.6", v8: "14.0", typescript: "5.9", kafkajs: "2.2.4" }),
    "eventsink 0.1.0\ndeno 2.9.6\nv8 14.0\ntypescript 5.9\nkafkajs 2.2.4",
  );
  assert.equal(VERSIONS.kafkajs, "2.2.4", "read from the KafkaJS package eventsink was built with");
  assert.equal(VERSIONS.deno, Deno.version.deno);
});

Deno.test("version: `make stage` (the source `make build` compiles) reports what git describe says", async () => {
  const root = new URL("../", import.meta.url).pathname;
  const stage = await Deno.makeTempDir();
  try {
    const run = async (command: string, args: string[]) => {
      const { code, stdout, stderr } = await new Deno.Command(command, { args, cwd: root }).output();
      const text = new TextDecoder().decode(stdout);
      assert.equal(code, 0, `${command} ${args.join(" ")}: ${text}${new TextDecoder().decode(stderr)}`);
      return text.trim();
    };
    const described = await run("git", ["describe", "--tags", "--always", "--dirty"]);
    await run("make", ["-s", "stage", `STAGE=${stage}`]);
    const output = await run(Deno.execPath(), [
      "run",
      "--frozen",
      ...(await permissionFlags()),
      `--config=${stage}/deno.json`,
      `${stage}/main.ts`,
      "--version",
    ]);
    assert.equal(output.split("\n")[0], `eventsink ${releaseVersion("0.1.0", described)}`);
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
});
