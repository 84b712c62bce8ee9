/**
 * Test runner for `make test` and CI: `deno run -A tests/run.ts [deno test args…]`.
 *
 * Starts one real Kafka broker (version from `KAFKA_VERSION`), runs `deno test --allow-all --unstable-net`
 * against it (default args: `tests/`) with `EVENTSINK_TEST_BOOTSTRAP` and `EVENTSINK_TEST_BROKER_CONTROL` set,
 * counts the top-level tests from the run's JUnit report (steps roll up into their test), and ends
 * with the one line `tests: N passed, N failed`. Exits non-zero if any failed or none ran.
 *
 * The secret scan: `EVENTSINK_TEST_SCAN_DIR` names a fresh directory where tests register every secret
 * and every eventsink process leaves its output (tests/support/secret_scan.ts); after the run every output
 * is searched for every form of every secret, and any hit counts as one failed test.
 */
import { join } from "node:path";
import {
  BOOTSTRAP_ENV,
  type Broker,
  CONTROL_ENV,
  ensureKafkaJars,
  kafkaVersion,
  startBroker,
} from "./support/broker.ts";
import {
  describeHits,
  OUTPUT_DIR,
  readRegisteredSecrets,
  SCAN_DIR_ENV,
  secretScanner,
} from "./support/secret_scan.ts";

interface Counts {
  passed: number;
  failed: number;
}

let testRun: Deno.ChildProcess | undefined;
let interruptedBy: Deno.Signal | undefined;

async function main(args: string[]): Promise<number> {
  listenForSignals();
  const version = kafkaVersion();
  let started = performance.now();
  await ensureKafkaJars(version);
  const jarSeconds = secondsSince(started);
  if (interruptedBy) return interruptedExitCode(interruptedBy);
  started = performance.now();
  const broker = await startBroker({ version });
  try {
    if (interruptedBy) return interruptedExitCode(interruptedBy);
    const startSeconds = secondsSince(started);
    console.log(`kafka ${version} on ${broker.bootstrap} (jars ${jarSeconds} s, start ${startSeconds} s)`);
    return await testAgainst(broker, args);
  } finally {
    await broker.stop();
  }
}

async function testAgainst(broker: Broker, args: string[]): Promise<number> {
  const control = serveControl(broker);
  // In the broker's dir, so that it goes with it, even when the broker's watchdog does the cleaning.
  const junitPath = join(broker.dataDir, "junit.xml");
  const scanDir = join(broker.dataDir, "secret-scan");
  await Deno.remove(scanDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(join(scanDir, OUTPUT_DIR), { recursive: true });
  try {
    const status = await runDenoTest(args, junitPath, {
      [BOOTSTRAP_ENV]: broker.bootstrap,
      [CONTROL_ENV]: `http://127.0.0.1:${control.addr.port}`,
      [SCAN_DIR_ENV]: scanDir,
    });
    if (interruptedBy) return interruptedExitCode(interruptedBy);
    const counts = countJUnit(await readReport(junitPath));
    if (!(await secretScan(scanDir))) counts.failed++;
    if (!status.success && counts.failed === 0) console.error(`deno test exited with code ${status.code}`);
    if (broker.crashed) {
      console.error(
        `the broker died during the run; its log (${broker.logFile}) ends:\n${await broker.logTail()}`,
      );
    }
    console.log(`tests: ${counts.passed} passed, ${counts.failed} failed`);
    return status.success && counts.failed === 0 && counts.passed > 0 ? 0 : 1;
  } finally {
    await control.shutdown();
  }
}

async function runDenoTest(
  args: string[],
  junitPath: string,
  env: Record<string, string>,
): Promise<Deno.CommandStatus> {
  const testArgs = args.length > 0 ? args : ["src/", "tests/"];
  testRun = new Deno.Command(Deno.execPath(), {
    // --unstable-net: tests play systemd's side of sd_notify with a unix datagram socket.
    args: ["test", "--allow-all", "--unstable-net", `--junit-path=${junitPath}`, ...testArgs],
    env,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return await testRun.status;
}

/**
 * Searches every eventsink output of the run for every form of every registered secret; prints the
 * verdict, naming a hit by file and secret prefix only. False when anything was found.
 */
async function secretScan(dir: string): Promise<boolean> {
  const secrets = await readRegisteredSecrets(dir);
  const outputs: string[] = [];
  for await (const entry of Deno.readDir(join(dir, OUTPUT_DIR))) {
    if (entry.isFile) outputs.push(entry.name);
  }
  const found: string[] = [];
  let count = 0;
  const scan = secretScanner(secrets);
  for (const name of outputs.sort()) {
    const hits = scan(await Deno.readTextFile(join(dir, OUTPUT_DIR, name)));
    count += hits.length;
    if (hits.length > 0) found.push(`  ${name}: ${describeHits(hits)}`);
  }
  if (count === 0) {
    console.log(`secret scan: ${outputs.length} outputs, ${secrets.length} secrets, no hit`);
    return true;
  }
  console.log(`secret scan: ${count} hit(s) in ${found.length} of ${outputs.length} outputs`);
  for (const line of found) console.log(line);
  return false;
}

/** The JUnit report, or "" when deno test stopped before writing one (e.g. a type error). */
async function readReport(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
}

/**
 * Counts top-level tests: Deno reports each step as a testcase named "test > step", and a failed
 * step also fails its test, so steps are left out rather than counted twice.
 */
function countJUnit(xml: string): Counts {
  const counts = { passed: 0, failed: 0 };
  for (const [, suite] of xml.matchAll(/<testsuite\b[^>]*>([\s\S]*?)<\/testsuite>/g)) {
    const cases = [...suite!.matchAll(/<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)].map((
      match,
    ) => ({
      name: /\bname="([^"]*)"/.exec(match[1]!)?.[1] ?? "",
      body: match[2] ?? "",
    }));
    const names = cases.map((testCase) => testCase.name);
    for (const { name, body } of cases) {
      if (names.some((other) => name.startsWith(`${other} &gt; `))) continue; // a step
      if (/<(failure|error)\b/.test(body)) counts.failed++;
      else if (!/<skipped\b/.test(body)) counts.passed++;
    }
  }
  return counts;
}

/** Lets tests stop, start and kill the shared broker: POST /stop, /start, /kill on 127.0.0.1. */
function serveControl(target: Broker): Deno.HttpServer<Deno.NetAddr> {
  const actions: Record<string, () => Promise<void>> = {
    "/stop": () => target.stop({ keepData: true }),
    "/start": () => target.start(),
    "/kill": () => target.kill(),
  };
  let queue: Promise<unknown> = Promise.resolve(); // one action at a time
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const action = actions[new URL(request.url).pathname];
    if (request.method !== "POST" || action === undefined) {
      return new Response("not found\n", { status: 404 });
    }
    const done = queue.then(action);
    queue = done.catch(() => {});
    try {
      await done;
      return Response.json({ bootstrap: target.bootstrap, running: target.running });
    } catch (error) {
      return new Response(`${error instanceof Error ? error.message : error}\n`, { status: 500 });
    }
  });
}

/**
 * The first SIGINT/SIGTERM ends the test run, and main() then stops the broker; a second one exits at
 * once, leaving the broker to its watchdog (which also covers the runner being SIGKILLed).
 */
function listenForSignals(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => interrupt(signal));
  }
}

function interrupt(signal: Deno.Signal): void {
  if (interruptedBy) Deno.exit(interruptedExitCode(signal));
  interruptedBy = signal;
  console.error(`\n${signal}: stopping the tests and the broker`);
  try {
    testRun?.kill("SIGTERM");
  } catch {
    // already exited
  }
}

function interruptedExitCode(signal: Deno.Signal): number {
  return signal === "SIGINT" ? 130 : 143;
}

function secondsSince(start: number): string {
  return ((performance.now() - start) / 1000).toFixed(1);
}

Deno.exit(
  await main(Deno.args).catch((error) => {
    // After Ctrl-C the broker got the SIGINT too, so a failed start is no news.
    if (interruptedBy) return interruptedExitCode(interruptedBy);
    console.error(error);
    return 1;
  }),
);
