/** What deploy/ ships: the systemd unit, the environment file example, the alert rules. */
import assert from "node:assert/strict";
import { ENV_NAMES } from "../src/config/options.ts";

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
  // A variable set in the example is only the one without a default.
  assert.deepEqual(assignments.filter((l) => !l.startsWith("#")), [
    "EVENTSINK_EVENTSTORE_URL=https://eventstore.example.org",
  ]);
});

Deno.test("deploy: the alert rules pass promtool, and the README shows them as they are", async () => {
  const { code, said } = await run("promtool", ["check", "rules", `${ROOT}deploy/eventsink-alerts.yml`]);
  assert.equal(code, 0, said);
  assert.match(said, /SUCCESS: 4 rules found/);
  const rules = await Deno.readTextFile(`${ROOT}deploy/eventsink-alerts.yml`);
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  assert.ok(
    readme.includes("```yaml\n" + rules + "```"),
    "README's copy differs from deploy/eventsink-alerts.yml",
  );
});
