/** Versions: what a build from git reports, and the --version text. */
import assert from "node:assert/strict";
import { releaseVersion, VERSIONS, versionText } from "../src/version.ts";
import { permissionFlags } from "./support/eventsink_process.ts";

Deno.test("version: from a release tag, after one, from a commit, from source", () => {
  assert.equal(releaseVersion("0.1.0", "v0.2.0"), "0.2.0", "a release says exactly its tag's version");
  assert.equal(releaseVersion("0.1.0", "v0.2.0-dirty"), "0.2.0+dirty");
  assert.equal(releaseVersion("0.1.0", "v0.2.0-3-gabc1234"), "0.2.0+3-gabc1234");
  assert.equal(releaseVersion("0.1.0", "v0.2.0-3-gabc1234-dirty"), "0.2.0+3-gabc1234-dirty");
  assert.equal(releaseVersion("0.1.0", "v1.0.0-rc.1"), "0.1.0+v1.0.0-rc.1", "not a release tag");
  assert.equal(releaseVersion("0.1.0", "abc1234"), "0.1.0+abc1234");
  assert.equal(releaseVersion("0.1.0", "abc1234-dirty"), "0.1.0+abc1234-dirty");
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
    const described = await run("git", ["describe", "--tags", "--match", "v[0-9]*", "--always", "--dirty"]);
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

Deno.test("version: a build on a release tag says exactly its version; after it, or changed, it says so", async () => {
  // A repository of this source's own, tagged as a release would be (the real one is not touched).
  const root = new URL("../", import.meta.url).pathname;
  const repo = await Deno.makeTempDir();
  try {
    const run = async (command: string, args: string[]) => {
      const { code, stdout, stderr } = await new Deno.Command(command, { args, cwd: repo }).output();
      const text = new TextDecoder().decode(stdout);
      assert.equal(code, 0, `${command} ${args.join(" ")}: ${text}${new TextDecoder().decode(stderr)}`);
      return text.trim();
    };
    for (const path of ["Makefile", "eventsink.permissions", "main.ts", "deno.json", "deno.lock", "src"]) {
      await run("cp", ["-R", `${root}${path}`, `${repo}/`]);
    }
    await Deno.writeTextFile(`${repo}/.gitignore`, "/dist/\n");
    const git = (...args: string[]) =>
      run("git", ["-c", "user.name=t", "-c", "user.email=t@example.org", ...args]);
    await git("init", "--quiet");
    await git("add", ".");
    await git("commit", "--quiet", "-m", "release");
    await git("tag", "-a", "v0.2.0", "-m", "0.2.0");
    const version = async () => {
      await run("make", ["-s", "stage"]);
      const output = await run(Deno.execPath(), [
        "run",
        "--frozen",
        ...(await permissionFlags()),
        "--config=dist/stage/deno.json",
        "dist/stage/main.ts",
        "--version",
      ]);
      return output.split("\n")[0];
    };
    assert.equal(await version(), "eventsink 0.2.0");
    await Deno.writeTextFile(`${repo}/main.ts`, "\n", { append: true });
    assert.equal(await version(), "eventsink 0.2.0+dirty");
    await git("commit", "--quiet", "-am", "after the release");
    assert.equal(await version(), `eventsink 0.2.0+1-g${await git("rev-parse", "--short", "HEAD")}`);
  } finally {
    await Deno.remove(repo, { recursive: true });
  }
});
