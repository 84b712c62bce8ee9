import type { Logger } from "../log.ts";

/**
 * After a second signal the run gets this long to abandon what is in flight and end with its Stopped line
 * (or a replay's summary, resume line and group removal) before the process exits regardless.
 */
export const HURRY_MS = 5_000;

/** What a signal leads to, by how far the process got. */
export type SignalAction = "exit" | "stop" | "hurry" | "ignore";

/** Before the run took over the stop, a signal exits at once: nothing was taken from Kafka yet. */
export function signalAction(running: boolean, signalsBefore: number): SignalAction {
  if (!running) return "exit";
  return signalsBefore === 0 ? "stop" : signalsBefore === 1 ? "hurry" : "ignore";
}

/** Hands the stop over to the run: `stop(now)` is a clean stop, or with `now` a hurried one. */
export interface Signals {
  running(stop: (now: boolean) => void): void;
}

/**
 * Listens for SIGTERM and SIGINT from the start. During start-up a signal exits at once with
 * `startupExitCode`. Once running, the first starts a clean stop; the second abandons what is in flight and
 * exits 1 once the run has ended, or after {@link HURRY_MS} if it has not.
 */
export function listenForSignals(
  deps: { log: Logger; exit: (code: number) => never; startupExitCode: number },
): Signals {
  let stop: ((now: boolean) => void) | undefined;
  let signals = 0;
  for (const name of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(name, () => {
      switch (signalAction(stop !== undefined, signals++)) {
        case "exit":
          deps.log.info(`${name} received during start-up: exiting`);
          return deps.exit(deps.startupExitCode);
        case "stop":
          deps.log.info(
            `${name} received: finishing deliveries in flight, then stopping (again to quit now)`,
          );
          return stop!(false);
        case "hurry":
          deps.log.warn(
            `Second ${name}: abandoning deliveries in flight; they are delivered again on the next start`,
          );
          setTimeout(() => deps.exit(1), HURRY_MS);
          return stop!(true);
      }
    });
  }
  return { running: (handler) => void (stop = handler) };
}
