import type { Monitor } from "./monitor.ts";
import type { Notifier } from "./systemd.ts";

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
