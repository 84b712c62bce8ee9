import type { Logger } from "../log.ts";
import type { Monitor } from "./monitor.ts";

/**
 * sd_notify(3) without libsystemd: datagrams such as `READY=1` to the unix socket named by NOTIFY_SOCKET.
 * Deno can only send from a bound datagram socket (`Deno.listenDatagram`, under --unstable-net), so
 * eventsink binds one of its own in NOTIFY_DIR; the unit's PrivateTmp= makes that /tmp private. Both
 * paths are granted in eventsink.permissions. Abstract socket names (`@…`) are not supported by Deno.
 */
export const NOTIFY_DIR = "/tmp/eventsink";

/** Sends sd_notify messages; never throws (systemd being unreachable is logged, not fatal). */
export interface Notifier {
  notify(message: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a notifier for `socketPath` (NOTIFY_SOCKET), or returns undefined when eventsink does not run
 * under a service manager that asked for notifications, or when the socket cannot be used (logged).
 */
export async function openNotifier(
  socketPath: string | undefined,
  log: Logger,
): Promise<Notifier | undefined> {
  if (socketPath === undefined || socketPath === "") return undefined;
  if (socketPath.startsWith("@")) {
    log.warn(
      "NOTIFY_SOCKET names an abstract socket, which Deno cannot use: systemd will not hear from " +
        "eventsink (a Type=notify unit times out starting; use Type=exec)",
      { notifySocket: socketPath },
    );
    return undefined;
  }
  const ownPath = `${NOTIFY_DIR}/notify-${Deno.pid}.sock`;
  let socket: Deno.DatagramConn;
  try {
    await Deno.mkdir(NOTIFY_DIR, { recursive: true, mode: 0o700 });
    await Deno.remove(ownPath).catch(() => {}); // left over by an earlier process with our pid
    socket = Deno.listenDatagram({ transport: "unixpacket", path: ownPath });
  } catch (error) {
    log.warn("Cannot open a socket to notify systemd; it will not hear from eventsink", {
      path: ownPath,
      error: (error as Error).message,
    });
    return undefined;
  }
  const target: Deno.UnixAddr = { transport: "unixpacket", path: socketPath };
  const encoder = new TextEncoder();
  let warned = false;
  return {
    async notify(message) {
      try {
        await socket.send(encoder.encode(message), target);
      } catch (error) {
        if (warned) return;
        warned = true; // once: systemd is either there or not, and the loop goes on either way
        log.warn("Cannot notify systemd", { notifySocket: socketPath, error: (error as Error).message });
      }
    },
    async close() {
      socket.close();
      await Deno.remove(ownPath).catch(() => {});
    },
  };
}

/**
 * The watchdog interval in milliseconds when systemd asked for pings (WatchdogSec= sets WATCHDOG_USEC),
 * and WATCHDOG_PID, if set, is this process; else undefined.
 */
export function watchdogInterval(
  env: { usec: string | undefined; pid: string | undefined },
  ownPid: number,
): number | undefined {
  if (env.pid !== undefined && env.pid !== "" && Number(env.pid) !== ownPid) return undefined;
  const usec = Number(env.usec);
  return Number.isFinite(usec) && usec > 0 ? usec / 1000 : undefined;
}

/** How often the phase is looked at: READY=1 follows the start of consumption within this. */
const TICK_MS = 250;
/** STATUS= is sent when it changed, at most this often. */
const STATUS_EVERY_MS = 5_000;

/** Tells systemd where eventsink is. */
export interface ServiceNotifications {
  /** STOPPING=1, once; the watchdog pings end with it. */
  stopping(): Promise<void>;
  /** Ends the timers and closes the socket. */
  close(): Promise<void>;
}

/**
 * Keeps systemd informed through `notifier`: STATUS= at start and as it changes, READY=1 once the sink
 * consumes, and, with `watchdogMs` (WatchdogSec=), WATCHDOG=1 at half that interval while /healthz would
 * answer 200 — a wedged consumer loop stops the pings and systemd restarts the service.
 */
export function notifyService(
  notifier: Notifier,
  options: { monitor: Monitor; watchdogMs: number | undefined; now: () => number },
): ServiceNotifications {
  const { monitor, now } = options;
  let ready = false;
  let stopping = false;
  let lastStatus = "";
  let lastStatusAt = -Infinity;
  const status = () => {
    lastStatus = monitor.statusLine();
    lastStatusAt = now();
    return `STATUS=${lastStatus}`;
  };
  void notifier.notify(status());
  const tick = setInterval(() => {
    if (stopping) return;
    if (!ready && monitor.phase() === "consuming") {
      ready = true;
      void notifier.notify(`READY=1\n${status()}`);
    } else if (now() - lastStatusAt >= STATUS_EVERY_MS && monitor.statusLine() !== lastStatus) {
      void notifier.notify(status());
    }
  }, TICK_MS);
  const watchdog = options.watchdogMs === undefined ? undefined : setInterval(() => {
    if (!stopping && monitor.liveness().ok) void notifier.notify("WATCHDOG=1");
  }, options.watchdogMs / 2);
  return {
    async stopping() {
      if (stopping) return;
      stopping = true;
      await notifier.notify(`STOPPING=1\n${status()}`);
    },
    async close() {
      clearInterval(tick);
      clearInterval(watchdog);
      await notifier.close();
    },
  };
}
