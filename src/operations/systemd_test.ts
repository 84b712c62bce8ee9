/** sd_notify in-process: the socket, the watchdog settings, and what is sent when (READY, STATUS, WATCHDOG). */
import assert from "node:assert/strict";
import { createLogger } from "../log.ts";
import type { Monitor } from "./monitor.ts";
import { type Notifier, NOTIFY_DIR, notifyService, openNotifier, watchdogInterval } from "./systemd.ts";
import type { SinkPhase } from "../sink/status.ts";

function recordingLog() {
  const lines: Array<{ line: string }> = [];
  return {
    lines,
    log: createLogger({ level: "debug", format: "json", write: (line) => lines.push({ line }) }),
  };
}

Deno.test("notify: the watchdog interval comes from WATCHDOG_USEC, for this process only", () => {
  assert.equal(watchdogInterval({ usec: "30000000", pid: undefined }, 42), 30_000);
  assert.equal(watchdogInterval({ usec: "30000000", pid: "42" }, 42), 30_000);
  assert.equal(watchdogInterval({ usec: "30000000", pid: "41" }, 42), undefined, "meant for another process");
  assert.equal(watchdogInterval({ usec: undefined, pid: undefined }, 42), undefined);
  assert.equal(watchdogInterval({ usec: "0", pid: undefined }, 42), undefined);
});

Deno.test("notify: datagrams reach the socket named by NOTIFY_SOCKET; our own socket is removed at close", async () => {
  await Deno.mkdir(NOTIFY_DIR, { recursive: true });
  const systemdPath = `${NOTIFY_DIR}/test-systemd-${crypto.randomUUID()}.sock`;
  const systemd = Deno.listenDatagram({ transport: "unixpacket", path: systemdPath });
  try {
    const { log } = recordingLog();
    const notifier = await openNotifier(systemdPath, log);
    assert.ok(notifier);
    await notifier.notify("READY=1\nSTATUS=consuming");
    const [data] = await systemd.receive();
    assert.equal(new TextDecoder().decode(data), "READY=1\nSTATUS=consuming");
    await notifier.close();
    await assert.rejects(Deno.stat(`${NOTIFY_DIR}/notify-${Deno.pid}.sock`), Deno.errors.NotFound);
  } finally {
    systemd.close();
    await Deno.remove(systemdPath);
  }
});

Deno.test("notify: no NOTIFY_SOCKET, none; an abstract one is refused with a warning", async () => {
  const { lines, log } = recordingLog();
  assert.equal(await openNotifier(undefined, log), undefined);
  assert.equal(lines.length, 0);
  assert.equal(await openNotifier("@/org/freedesktop/systemd1/notify", log), undefined);
  assert.match(lines[0]!.line, /abstract socket, which Deno cannot use/);
});

Deno.test("notify: a socket that is not there is warned about once, and eventsink goes on", async () => {
  const { lines, log } = recordingLog();
  const notifier = await openNotifier(`${NOTIFY_DIR}/nobody-${crypto.randomUUID()}.sock`, log);
  assert.ok(notifier);
  await notifier.notify("STATUS=a");
  await notifier.notify("STATUS=b");
  await notifier.close();
  assert.equal(lines.filter((l) => l.line.includes("Cannot notify systemd")).length, 1);
});

/** A monitor whose phase and liveness the test sets. */
function fakeMonitor(state: { phase: SinkPhase; alive: boolean; status: string }): Monitor {
  return {
    phase: () => state.phase,
    liveness: () => ({ ok: state.alive, reason: "" }),
    readiness: () => ({ ok: true, reason: "" }),
    statusLine: () => state.status,
    metrics: () => "",
    close: () => {},
  };
}

function recordingNotifier(): Notifier & { sent: string[] } {
  const sent: string[] = [];
  return { sent, notify: (m) => Promise.resolve(void sent.push(m)), close: () => Promise.resolve() };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("service: STATUS at start, READY once consuming, watchdog while alive, STOPPING once", async () => {
  const state = { phase: "starting" as SinkPhase, alive: true, status: "Starting" };
  const notifier = recordingNotifier();
  const service = notifyService(notifier, { monitor: fakeMonitor(state), watchdogMs: 200, now: Date.now });
  try {
    await pause(350);
    assert.deepEqual(notifier.sent.filter((m) => !m.startsWith("WATCHDOG")), ["STATUS=Starting"]);
    assert.ok(notifier.sent.includes("WATCHDOG=1"), "pinged while starting");
    state.phase = "consuming";
    state.status = "Consuming";
    await pause(350);
    assert.equal(notifier.sent.filter((m) => m === "READY=1\nSTATUS=Consuming").length, 1);
    state.alive = false;
    await pause(150); // a ping already scheduled may still go out
    const pings = notifier.sent.filter((m) => m === "WATCHDOG=1").length;
    await pause(350);
    assert.equal(notifier.sent.filter((m) => m === "WATCHDOG=1").length, pings, "no pings for a wedged loop");
    state.alive = true;
    state.phase = "stopping";
    state.status = "Stopping";
    await service.stopping();
    await service.stopping();
    const after = notifier.sent.length;
    await pause(350);
    assert.equal(notifier.sent.filter((m) => m.startsWith("STOPPING=1")).length, 1);
    assert.equal(notifier.sent.at(-1), "STOPPING=1\nSTATUS=Stopping");
    assert.equal(notifier.sent.length, after, "nothing after STOPPING=1, no watchdog either");
  } finally {
    await service.close();
  }
});

Deno.test("service: without WatchdogSec no pings", async () => {
  const notifier = recordingNotifier();
  const state = { phase: "consuming" as SinkPhase, alive: true, status: "Consuming" };
  const service = notifyService(notifier, {
    monitor: fakeMonitor(state),
    watchdogMs: undefined,
    now: Date.now,
  });
  await pause(300);
  await service.close();
  assert.ok(!notifier.sent.some((m) => m.startsWith("WATCHDOG")));
  assert.ok(notifier.sent.some((m) => m.startsWith("READY=1")));
});
