/**
 * eventsink under systemd (issue 6), with the test in systemd's place: it binds the NOTIFY_SOCKET datagram
 * socket and sees READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 come at the right moments;
 * log lines for the journal carry priorities.
 */
import assert from "node:assert/strict";
import { produce } from "./support/broker.ts";
import { permissionFlags, spawnEventsink } from "./support/eventsink_process.ts";
import { openPipeline, validMessages, waitUntil } from "./support/pipeline.ts";
import { NOTIFY_DIR } from "../src/operations/systemd.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** One datagram from eventsink, its assignments split, with the time it arrived. */
interface Notification {
  at: number;
  fields: Record<string, string>;
}

/** systemd's side of sd_notify: a datagram socket in the directory eventsink may send to. */
async function fakeSystemd() {
  await Deno.mkdir(NOTIFY_DIR, { recursive: true });
  const path = `${NOTIFY_DIR}/test-systemd-${crypto.randomUUID()}.sock`;
  const socket = Deno.listenDatagram({ transport: "unixpacket", path });
  const received: Notification[] = [];
  const reading = (async () => {
    try {
      for (;;) {
        const [data] = await socket.receive();
        const fields = Object.fromEntries(
          new TextDecoder().decode(data).split("\n").map((line) => {
            const at = line.indexOf("=");
            return [line.slice(0, at), line.slice(at + 1)];
          }),
        );
        received.push({ at: Date.now(), fields });
      }
    } catch {
      // closed
    }
  })();
  return {
    path,
    received,
    first: (name: string) => received.find((n) => name in n.fields),
    count: (name: string) => received.filter((n) => name in n.fields).length,
    async [Symbol.asyncDispose]() {
      socket.close();
      await reading;
      await Deno.remove(path).catch(() => {});
    },
  };
}

Deno.test("systemd: STATUS while starting, READY=1 once consuming, progress in STATUS, WATCHDOG=1, STOPPING=1 on SIGTERM", async () => {
  await using p = await openPipeline(2);
  await using systemd = await fakeSystemd();
  const sink = await spawnEventsink({
    ...p,
    env: { NOTIFY_SOCKET: systemd.path, WATCHDOG_USEC: "1000000" },
  });
  try {
    await waitUntil("READY=1", () => systemd.first("READY") !== undefined);
    const ready = systemd.first("READY")!;
    assert.equal(
      systemd.received[0]!.fields.STATUS,
      "Starting: connecting to Kafka and joining the consumer group",
    );
    assert.ok(!("READY" in systemd.received[0]!.fields), "not ready at once");
    const assigned = sink.lines.find((l) => l.msg === "Partitions assigned");
    assert.ok(assigned && Date.parse(assigned.time) <= ready.at, "READY=1 after the group was joined");
    assert.match(ready.fields.STATUS!, /^Consuming .* \(2 partitions\): 0 delivered/);

    const messages = await validMessages(3);
    await produce(p.bootstrap, p.topic, messages.map((m) => ({ value: m.bytes })));
    await waitUntil(
      "STATUS with 3 delivered",
      () =>
        systemd.received.some((n) =>
          /: 3 delivered, 0 dead-lettered, 0 skipped; lag 0$/.test(n.fields.STATUS ?? "")
        ),
      15_000,
    );
    // WatchdogSec=1s: a ping every half second while the loop is alive.
    const pings = systemd.count("WATCHDOG");
    await new Promise((resolve) => setTimeout(resolve, 1600));
    assert.ok(systemd.count("WATCHDOG") >= pings + 2, `pings: ${pings} → ${systemd.count("WATCHDOG")}`);
    assert.ok(systemd.received.every((n) => !("WATCHDOG" in n.fields) || n.fields.WATCHDOG === "1"));

    const signalledAt = Date.now();
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(), 0);
    const exitedAt = Date.now();
    const stopping = systemd.first("STOPPING");
    assert.ok(stopping, "STOPPING=1 came");
    assert.equal(stopping.fields.STOPPING, "1");
    assert.ok(stopping.at >= signalledAt && stopping.at <= exitedAt, "between the signal and the exit");
    assert.match(stopping.fields.STATUS!, /^Stopping: finishing deliveries in flight; 3 delivered/);
    const afterStop = systemd.received.filter((n) => n.at > stopping.at);
    assert.deepEqual(afterStop.filter((n) => "WATCHDOG" in n.fields), [], "no pings after STOPPING=1");
    assert.equal(systemd.count("READY"), 1);
    await assert.rejects(Deno.stat(`${NOTIFY_DIR}/notify-${sink.pid}.sock`), Deno.errors.NotFound);
  } finally {
    await sink.close();
  }
});

Deno.test("systemd: no watchdog pings when WATCHDOG_PID names another process, or without WatchdogSec", async () => {
  await using p = await openPipeline(1);
  const cases: Record<string, string>[] = [{ WATCHDOG_USEC: "200000", WATCHDOG_PID: "1" }, {}];
  for (const env of cases) {
    await using systemd = await fakeSystemd();
    const sink = await spawnEventsink({ ...p, env: { NOTIFY_SOCKET: systemd.path, ...env } });
    try {
      await waitUntil("READY=1", () => systemd.first("READY") !== undefined);
      await new Promise((resolve) => setTimeout(resolve, 600));
      sink.signal("SIGTERM");
      assert.equal(await sink.exited(), 0);
      assert.equal(systemd.count("WATCHDOG"), 0, JSON.stringify(env));
      assert.equal(systemd.count("STOPPING"), 1);
    } finally {
      await sink.close();
    }
  }
});

Deno.test("systemd: with JOURNAL_STREAM naming its stderr, lines carry syslog priorities and no time", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const logFile = `${dir}/stderr`;
    await Deno.writeFile(logFile, new Uint8Array());
    const stat = await Deno.stat(logFile);
    // Kafka not there: an info line at start, an error at the end, exit 1.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    const command = [Deno.execPath(), "run", "--frozen", ...(await permissionFlags()), `${ROOT}main.ts`];
    const child = new Deno.Command("sh", {
      args: ["-c", 'exec "$@" 2>>"$LOG_FILE"', "sh", ...command],
      env: {
        LOG_FILE: logFile,
        JOURNAL_STREAM: `${stat.dev}:${stat.ino}`,
        EVENTSINK_BROKERS: `127.0.0.1:${port}`,
        EVENTSINK_EVENTSTORE_URL: "http://127.0.0.1:9",
        EVENTSINK_HTTP_LISTEN: "off",
      },
      stdout: "null",
      stderr: "null",
      cwd: ROOT,
    });
    assert.equal((await child.output()).code, 1);
    const lines = (await Deno.readTextFile(logFile)).trim().split("\n");
    assert.match(lines[0]!, /^<6>INFO {2}eventsink \S+ starting brokers=127\.0\.0\.1:\d+ /);
    assert.match(lines.at(-1)!, /^<3>ERROR Cannot start: Kafka at 127\.0\.0\.1:\d+ did not answer/);
    assert.ok(lines.every((l) => /^<[3467]>/.test(l)), lines.join("\n"));
    assert.ok(!lines.some((l) => /\d{4}-\d\d-\d\dT\d\d:\d\d/.test(l)), "no timestamps of our own");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
