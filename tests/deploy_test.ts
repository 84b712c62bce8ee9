/** What deploy/ ships: the systemd unit, the environment file example, the alert rules (install.sh: install_test.ts). */
import assert from "node:assert/strict";
import { ENV_NAMES } from "../src/config/options.ts";
import { SECRETS } from "../src/security/credentials.ts";
import { permissionFlags } from "./support/eventsink_process.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function run(command: string, args: string[]): Promise<{ code: number; said: string }> {
  const { code, stdout, stderr } = await new Deno.Command(command, { args }).output();
  return { code, said: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
}

Deno.test("deploy: the unit passes systemd-analyze verify", async () => {
  // verify checks that ExecStart's binary exists: the unit is verified as shipped with that path swapped.
  const unit = await Deno.readTextFile(`${ROOT}deploy/eventsink.service`);
  assert.match(unit, /^ExecStart=\/usr\/local\/bin\/eventsink$/m);
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/eventsink.service`;
    await Deno.writeTextFile(path, unit.replace(/^ExecStart=\S+/m, `ExecStart=${Deno.execPath()}`));
    const { code, said } = await run("systemd-analyze", ["verify", "--man=no", path]);
    assert.equal(code, 0, said);
    assert.equal(said.trim(), "", "no warnings either");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deploy: the environment file example (and the README) names every variable eventsink reads", async () => {
  const example = await Deno.readTextFile(`${ROOT}deploy/eventsink.env`);
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  for (const name of ENV_NAMES) {
    assert.match(example, new RegExp(`\\b${name}\\b`), `${name} missing from the example`);
    assert.ok(readme.includes(`\`${name}\``), `${name} missing from README's configuration table`);
  }
  const assignments = example.split("\n").filter((l) => /^#?[A-Z_]+=/.test(l));
  for (const line of assignments) {
    const name = line.replace(/^#/, "").split("=")[0]!;
    assert.ok(ENV_NAMES.includes(name) || name.startsWith("KAFKAJS_"), `${name} is not read by eventsink`);
  }
  assert.deepEqual(
    assignments.filter((l) => !l.startsWith("#")),
    [],
    "nothing set: the operator sets it all",
  );
});

Deno.test("deploy: eventsink with the example environment file as shipped stops at once: the URL is required", async () => {
  const example = await Deno.readTextFile(`${ROOT}deploy/eventsink.env`);
  const env: Record<string, string> = {};
  for (const line of example.split("\n").filter((l) => /^[A-Z_]+=/.test(l))) {
    env[line.slice(0, line.indexOf("="))] = line.slice(line.indexOf("=") + 1);
  }
  // Only the file's variables, as systemd's EnvironmentFile= gives them (and what Deno needs to find its cache).
  for (const name of ["PATH", "HOME", "DENO_DIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--frozen", ...(await permissionFlags()), `${ROOT}main.ts`],
    env,
    clearEnv: true,
  }).output();
  assert.equal(code, 2);
  assert.equal(new TextDecoder().decode(stdout), "");
  assert.match(new TextDecoder().decode(stderr), /^eventsink: --eventstore-url is required\b/m);
});

Deno.test("deploy: the secrets and TLS keys live in /etc/eventsink/credentials/<name>, in the unit and the env file", async () => {
  const unit = await Deno.readTextFile(`${ROOT}deploy/eventsink.service`);
  const example = await Deno.readTextFile(`${ROOT}deploy/eventsink.env`);
  const loaded = [...unit.matchAll(/^#LoadCredential=([^:\n]+):(.*)$/gm)];
  for (const [line, name, path] of loaded) assert.equal(path, `/etc/eventsink/credentials/${name}`, line);
  const names = loaded.map(([, name]) => name!);
  // The secrets by the names eventsink looks for in $CREDENTIALS_DIRECTORY, the keys by the options naming them.
  const keys = [...unit.matchAll(/^#Environment=(EVENTSINK_\w+_KEY)=%d\/(.+)$/gm)].map((
    [, option, name],
  ) => ({
    option: option!,
    name: name!,
  }));
  assert.deepEqual(names, [...Object.values(SECRETS).map((s) => s.credential), ...keys.map((k) => k.name)]);
  assert.deepEqual(keys.map((k) => k.option), ["EVENTSINK_EVENTSTORE_KEY", "EVENTSINK_KAFKA_KEY"]);
  // The environment file's secret files and keys (for runs by hand) are the same files.
  const files = [...example.matchAll(/^#(EVENTSINK_\w+_(?:FILE|KEY))=(.*)$/gm)];
  assert.equal(files.length, 5, files.map(([line]) => line).join("\n"));
  for (const [line, , path] of files) {
    assert.ok(names.some((name) => path === `/etc/eventsink/credentials/${name}`), line);
  }
  for (const { option, name } of keys) {
    assert.match(example, new RegExp(`^#${option}=/etc/eventsink/credentials/${name}$`, "m"));
  }
});

Deno.test("deploy: every README section the deploy files cite is a heading of README.md", async () => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const headings = new Set(
    readme.split("\n").filter((l) => /^#+ /.test(l)).map((l) => l.replace(/^#+ /, "")),
  );
  const cited: string[] = [];
  for (const file of ["eventsink.service", "eventsink.env", "eventsink-alerts.yml", "install.sh"]) {
    const text = await Deno.readTextFile(`${ROOT}deploy/${file}`);
    for (const [, heading] of text.matchAll(/README(?:\.md)?, "([^"]+)"/g)) {
      cited.push(heading!);
      assert.ok(
        headings.has(heading!),
        `deploy/${file} cites README section "${heading}", which README.md lacks`,
      );
    }
    assert.doesNotMatch(
      text,
      /README(?:\.md)?,? [^"\s]/,
      `deploy/${file}: cite README sections as README.md, "…"`,
    );
  }
  assert.ok(cited.includes("Running as a systemd service"), cited.join(", "));
});

Deno.test("deploy: the alert rules pass promtool, and the README lists every alert", async () => {
  const { code, said } = await run("promtool", ["check", "rules", `${ROOT}deploy/eventsink-alerts.yml`]);
  assert.equal(code, 0, said);
  assert.match(said, /SUCCESS: 5 rules found/);
  const rules = await Deno.readTextFile(`${ROOT}deploy/eventsink-alerts.yml`);
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const alerts = [...rules.matchAll(/^\s*- alert:\s*(\S+)\s*$/gm)].map((m) => m[1]!);
  assert.ok(alerts.length > 0, "no alert found in deploy/eventsink-alerts.yml");
  for (const alert of alerts) {
    assert.ok(readme.includes(`\`${alert}\``), `alert ${alert} is not listed in the README`);
  }
});
