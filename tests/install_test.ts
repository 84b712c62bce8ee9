/**
 * The release archive (`make release-archive`) and its deploy/install.sh, run in a scratch root (--root) on an
 * archive of a stand-in binary: what lands where with which mode, what is never overwritten, what is refused,
 * and that the next steps it prints run `eventsink check` as the unit runs eventsink.
 */
import assert from "node:assert/strict";
import { releaseVersion } from "../src/version.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const STAND_IN = '#!/bin/sh\necho "eventsink 9.9.9-stand-in"\n';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(command: string, args: string[], cwd = ROOT): Promise<Ran> {
  const { code, stdout, stderr } = await new Deno.Command(command, { args, cwd }).output();
  return { code, stdout: new TextDecoder().decode(stdout), stderr: new TextDecoder().decode(stderr) };
}

async function ok(command: string, args: string[], cwd = ROOT): Promise<string> {
  const ran = await run(command, args, cwd);
  assert.equal(ran.code, 0, `${command} ${args.join(" ")}: ${ran.stdout}${ran.stderr}`);
  return ran.stdout;
}

/** A release archive of `binary`, made by `make release-archive` and extracted, in a fresh directory. */
interface Archive {
  /** The .tar.gz. */
  tarball: string;
  /** Its extracted top directory. */
  extracted: string;
  /** A scratch root for install.sh --root, empty. */
  root: string;
  install(...args: string[]): Promise<Ran>;
}

async function withArchive(binary: string, use: (archive: Archive) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/binary`, binary, { mode: 0o755 });
    const made = await ok("make", [
      "-s",
      "release-archive",
      `BINARY=${dir}/binary`,
      `STAGE=${dir}/stage`,
      `RELEASE_DIR=${dir}/release`,
    ]);
    const tarball = made.trim().split("\n").at(-1)!;
    await Deno.mkdir(`${dir}/extracted`);
    await ok("tar", ["-xzf", tarball, "-C", `${dir}/extracted`]);
    const [top] = await Array.fromAsync(Deno.readDir(`${dir}/extracted`));
    const extracted = `${dir}/extracted/${top!.name}`;
    const root = `${dir}/root`;
    await Deno.mkdir(root);
    await use({
      tarball,
      extracted,
      root,
      install: (...args) => run(`${extracted}/deploy/install.sh`, ["--root", root, ...args], dir),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function mode(path: string): Promise<string> {
  return ((await Deno.stat(path)).mode! & 0o7777).toString(8).padStart(4, "0");
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${prefix}${entry.name}`;
    found.push(entry.isDirectory ? `${path}/` : path);
    if (entry.isDirectory) found.push(...await listFiles(`${dir}/${entry.name}`, `${path}/`));
  }
  return found.sort();
}

/** The command a printed step shows, its continuation lines joined. */
function printedCommand(stdout: string, start: string): string {
  const at = stdout.indexOf(start);
  assert.ok(at >= 0, `no '${start}' in:\n${stdout}`);
  const lines: string[] = [];
  for (const line of stdout.slice(at).split("\n")) {
    lines.push(line.trim().replace(/\s*\\$/, ""));
    if (!line.endsWith("\\")) break;
  }
  return lines.join(" ");
}

Deno.test("install: a release archive holds the binary and its checksum, deploy/, README, LICENSE, CHANGELOG", async () => {
  const described = await ok("git", ["describe", "--tags", "--match", "v[0-9]*", "--always", "--dirty"]);
  await withArchive(STAND_IN, async ({ tarball, extracted }) => {
    const name = `eventsink-${releaseVersion("0.1.0", described.trim())}-linux-${Deno.build.arch}`;
    assert.equal(tarball.split("/").at(-1), `${name}.tar.gz`);
    assert.equal(extracted.split("/").at(-1), name, "one top directory, named as the archive");
    assert.deepEqual(await listFiles(extracted), [
      "CHANGELOG.md",
      "LICENSE",
      "README.md",
      "deploy/",
      "deploy/eventsink-alerts.yml",
      "deploy/eventsink.env",
      "deploy/eventsink.service",
      "deploy/install.sh",
      "eventsink",
      "eventsink.sha256",
    ]);
    assert.equal(await Deno.readTextFile(`${extracted}/eventsink`), STAND_IN);
    assert.equal(await mode(`${extracted}/eventsink`), "0755");
    assert.equal(await mode(`${extracted}/deploy/install.sh`), "0755");
    assert.equal(await mode(`${extracted}/deploy/eventsink.env`), "0644");
    for (const file of ["deploy/eventsink.service", "deploy/eventsink.env", "README.md", "LICENSE"]) {
      assert.equal(
        await Deno.readTextFile(`${extracted}/${file}`),
        await Deno.readTextFile(`${ROOT}${file}`),
      );
    }
    const owners = await ok("tar", ["-tvzf", tarball]);
    for (const line of owners.trim().split("\n")) {
      assert.match(line, /^\S+ 0\/0 /, "owned by root in the archive");
    }
  });
});

Deno.test("install: the files land with their modes, and a second run keeps the operator's settings", async () => {
  await withArchive(STAND_IN, async ({ extracted, root, install }) => {
    const first = await install();
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^Installed eventsink 9\.9\.9-stand-in:$/m);
    assert.deepEqual(await listFiles(root), [
      "etc/",
      "etc/eventsink/",
      "etc/eventsink/credentials/",
      "etc/eventsink/eventsink.env",
      "etc/systemd/",
      "etc/systemd/system/",
      "etc/systemd/system/eventsink.service",
      "usr/",
      "usr/local/",
      "usr/local/bin/",
      "usr/local/bin/eventsink",
    ]);
    assert.equal(await mode(`${root}/usr/local/bin/eventsink`), "0755");
    assert.equal(await mode(`${root}/etc/systemd/system/eventsink.service`), "0644");
    assert.equal(await mode(`${root}/etc/eventsink/eventsink.env`), "0644");
    assert.equal(await mode(`${root}/etc/eventsink/credentials`), "0700");
    assert.equal(await Deno.readTextFile(`${root}/usr/local/bin/eventsink`), STAND_IN);
    for (
      const [installed, shipped] of [["etc/systemd/system/eventsink.service", "eventsink.service"], [
        "etc/eventsink/eventsink.env",
        "eventsink.env",
      ]]
    ) {
      assert.equal(
        await Deno.readTextFile(`${root}/${installed}`),
        await Deno.readTextFile(`${extracted}/deploy/${shipped}`),
      );
    }

    const settings = "EVENTSINK_EVENTSTORE_URL=https://eventstore.internal\n";
    await Deno.writeTextFile(`${root}/etc/eventsink/eventsink.env`, settings);
    await Deno.writeTextFile(`${root}/etc/eventsink/credentials/oauth-client-secret`, "s3cret", {
      mode: 0o600,
    });
    await Deno.chmod(`${root}/etc/eventsink/credentials`, 0o755);
    const second = await install();
    assert.equal(second.code, 0, second.stderr);
    assert.equal(await Deno.readTextFile(`${root}/etc/eventsink/eventsink.env`), settings, "settings kept");
    assert.match(second.stdout, /eventsink\.env +kept as it was/);
    assert.equal(await Deno.readTextFile(`${root}/etc/eventsink/credentials/oauth-client-secret`), "s3cret");
    assert.equal(await mode(`${root}/etc/eventsink/credentials`), "0700", "root only again");
  });
});

Deno.test("install: a binary that does not match the archive's checksum is refused, and nothing installed", async () => {
  await withArchive(STAND_IN, async ({ extracted, root, install }) => {
    await Deno.writeTextFile(`${extracted}/eventsink`, STAND_IN.replace("stand-in", "tampered"));
    const ran = await install();
    assert.equal(ran.code, 1);
    assert.match(
      ran.stderr,
      /^install\.sh: \S+\/eventsink does not match eventsink\.sha256 \(damaged or replaced\): nothing was installed$/m,
    );
    assert.deepEqual(await listFiles(root), []);
  });
});

Deno.test("install: a binary that does not run here (another architecture's) is refused, and nothing installed", async () => {
  await withArchive("#!/bin/sh\nexit 126\n", async ({ root, install }) => {
    const ran = await install();
    assert.equal(ran.code, 1);
    assert.match(ran.stderr, /eventsink does not run on this \S+ machine .*: nothing was installed$/m);
    assert.deepEqual(await listFiles(root), []);
  });
});

Deno.test("install: the installed unit, with the credentials drop-in it prints, passes systemd-analyze verify", async () => {
  await withArchive(STAND_IN, async ({ root, install }) => {
    const ran = await install();
    assert.equal(ran.code, 0, ran.stderr);
    const unit = await Deno.readTextFile(`${root}/etc/systemd/system/eventsink.service`);
    // The drop-in as the printed printf writes it.
    const printf = printedCommand(ran.stdout, "printf '[Service]");
    const dropIn =
      /^printf '(\[Service\]\\n[^']*)' >\/etc\/systemd\/system\/eventsink\.service\.d\/credentials\.conf$/
        .exec(printf);
    assert.ok(dropIn, printf);
    // Every example line of the unit too (the secrets' and the TLS keys' credentials, the keys' %d paths).
    const examples = unit.split("\n").filter((line) => /^#(LoadCredential|Environment)=/.test(line));
    assert.equal(examples.length, 7, examples.join("\n"));
    const variants = {
      "as installed": { unit, dropIn: undefined },
      "with the printed drop-in": { unit, dropIn: dropIn[1]!.replaceAll("\\n", "\n") },
      "with every example line": {
        unit: unit.replace(/^#(LoadCredential|Environment)=/gm, "$1="),
        dropIn: undefined,
      },
    };
    for (const [name, variant] of Object.entries(variants)) {
      const dir = await Deno.makeTempDir();
      try {
        // verify checks that ExecStart's binary exists: the stand-in at /usr/local/bin is not there.
        await Deno.writeTextFile(
          `${dir}/eventsink.service`,
          variant.unit.replace(/^ExecStart=\S+/m, `ExecStart=${Deno.execPath()}`),
        );
        if (variant.dropIn !== undefined) {
          await Deno.mkdir(`${dir}/eventsink.service.d`);
          await Deno.writeTextFile(`${dir}/eventsink.service.d/credentials.conf`, variant.dropIn);
        }
        const verified = await run("systemd-analyze", ["verify", "--man=no", `${dir}/eventsink.service`]);
        assert.equal(verified.code, 0, `${name}: ${verified.stdout}${verified.stderr}`);
        assert.equal((verified.stdout + verified.stderr).trim(), "", `${name}: no warnings either`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
  });
});

Deno.test("install: the printed check runs eventsink as the unit does, with the same LoadCredential=", async () => {
  await withArchive(STAND_IN, async ({ root, install }) => {
    const ran = await install();
    assert.equal(ran.code, 0, ran.stderr);
    const unit = await Deno.readTextFile(`${root}/etc/systemd/system/eventsink.service`);
    const setting = (name: string) => unit.match(new RegExp(`^${name}=(.*)$`, "m"))?.[1];

    const check = printedCommand(ran.stdout, "systemd-run ");
    assert.equal(
      check,
      `systemd-run --pipe --wait -p DynamicUser=${setting("DynamicUser")} ` +
        `-p EnvironmentFile=${setting("EnvironmentFile")} ` +
        "-p LoadCredential=oauth-client-secret:/etc/eventsink/credentials/oauth-client-secret " +
        `${setting("ExecStart")} check`,
    );
    // The credential is the unit's own example line, and the one the printed drop-in gives the service.
    assert.match(
      unit,
      /^#LoadCredential=oauth-client-secret:\/etc\/eventsink\/credentials\/oauth-client-secret$/m,
    );
    assert.match(
      printedCommand(ran.stdout, "printf '[Service]"),
      /\\nLoadCredential=oauth-client-secret:\/etc\/eventsink\/credentials\/oauth-client-secret\\n'/,
    );
    // The secret is stored where that line loads it from.
    assert.equal(
      printedCommand(ran.stdout, "(umask 077;"),
      `(umask 077; printf '%s' "$SECRET" >/etc/eventsink/credentials/oauth-client-secret)`,
    );
    assert.match(ran.stdout, /^ +systemctl enable --now eventsink$/m);
    assert.match(ran.stdout, /^ +curl -s http:\/\/127\.0\.0\.1:8095\/readyz$/m);
  });
});
