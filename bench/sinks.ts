/** Starting the sinks under test as real processes: the naive baseline, eventsink itself and Benthos. */
import { spawnEventsink } from "../tests/support/eventsink_process.ts";
import { startBenthos } from "./benthos.ts";
import { onCleanUp, spawnScript, watch } from "./children.ts";
import type { Subject } from "./configs.ts";
import { pidsWithArgument } from "./proc.ts";

/** Where a sink reads and writes. */
export interface SinkPlace {
  bootstrap: string;
  topic: string;
  /** A fresh group for every run. */
  group: string;
  /** The EventStore's base URL. */
  url: string;
}

/** A running sink process. */
export interface SinkProcess {
  pid: number;
  /** The end of its output, for error reports. */
  describe(): string;
  /** Kills it (SIGKILL) and waits for it. */
  close(): Promise<void>;
}

/**
 * Starts the naive sink, eventsink (with its real permission set, JSON logs at info level) or Benthos (the
 * binary bench/benthos.ts built).
 */
export async function startSink(subject: Subject, place: SinkPlace): Promise<SinkProcess> {
  if (subject.kind === "benthos") return await startBenthos(place, subject.maxInFlight);
  if (subject.kind === "naive") {
    const process = spawnScript("naive_sink.ts", [place.bootstrap, place.topic, place.group, place.url]);
    await process.firstLine;
    return { pid: process.pid, describe: process.stderrTail, close: process.close };
  }
  if (subject.kind !== "eventsink") throw new Error(`${subject.kind} is not a sink`);
  // spawnEventsink asks for debug logs; the later flag wins, and info leaves out a line per record.
  const args = ["--log-level", "info"];
  if (subject.maxInFlight) args.push("--max-in-flight", String(subject.maxInFlight));
  // No ordering given: eventsink's own default.
  const ordering = subject.ordering ?? null;
  const sink = await spawnEventsink({ ...place, store: { url: place.url }, args, ordering });
  const removeCleanUp = onCleanUp(() => sink.close());
  const close = async () => {
    await sink.close();
    removeCleanUp();
  };
  try {
    const pid = await pidOfGroup(place.group);
    watch(pid);
    return { pid, describe: () => sink.output().split("\n").slice(-15).join("\n"), close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** eventsink_process.ts does not tell the pid: the process is the one whose arguments name the group. */
async function pidOfGroup(group: string): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const [pid] = await pidsWithArgument(group);
    if (pid !== undefined) return pid;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`cannot find the eventsink process of group ${group}`);
}
