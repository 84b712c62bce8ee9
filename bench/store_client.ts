/**
 * The harness's handle on the bench's EventStore, in a process of its own: the lean store (bench/leanstore/,
 * Go, built into .cache/leanstore/) when Go is there, else bench/store_host.ts (the test stand-in, Deno,
 * which runs out of CPU at about 4,000–5,000 POST/s). Both speak the same control protocol.
 */
import { type ScriptProcess, spawnProcess, spawnScript } from "./children.ts";
import { binaryOf, ensureGoProgram } from "./gobuild.ts";

/** Progress of 2xx answers; times are epoch milliseconds of the host's clock (the machine's). */
export interface StoreProgress {
  accepted: number;
  firstAt: number | undefined;
  lastAt: number | undefined;
  at: number;
}

/** POST latency at the stand-in: from a request's arrival to its 2xx answer, in ms. */
export interface PostLatency {
  samples: number;
  mean: number;
  p50: number;
  p99: number;
}

/** Which EventStore the bench runs against. */
export type StoreKind = "lean" | "deno";

/** A running stand-in host. */
export interface StoreHost {
  kind: StoreKind;
  /** Base URL for eventsink's --eventstore-url. */
  url: string;
  pid: number;
  setLatency(ms: number): Promise<void>;
  /** Forgets stored messages and zeroes the counts. */
  reset(): Promise<void>;
  progress(): Promise<StoreProgress>;
  startWindow(): Promise<void>;
  stopWindow(): Promise<PostLatency>;
  startLive(): Promise<void>;
  /** Stored times (epoch ms) by message id since {@link startLive}. */
  stopLive(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/** The lean store's binary; also its load generator (`leanstore load <url> <C> <bytes>`). */
export const LEANSTORE_BINARY = binaryOf("leanstore");

/** Builds the lean store if needed: "lean" when it is ready, else "deno" and why (said in one line). */
export async function chooseStore(say: (line: string) => void, signal: AbortSignal): Promise<StoreKind> {
  const build = await ensureGoProgram(
    { name: "leanstore", sources: ["go.mod", "main.go"], buildNote: "once; a few seconds" },
    say,
    signal,
  );
  if (build.kind === "ready") return "lean";
  say(
    `leanstore: skipped (${build.reason}); the EventStore is bench/store_host.ts, limited to ~4,000 POST/s`,
  );
  return "deno";
}

/** Starts the lean store or bench/store_host.ts and waits for its ready line. */
export async function startStoreHost(kind: StoreKind = "deno"): Promise<StoreHost> {
  const process: ScriptProcess = kind === "lean"
    ? spawnProcess("leanstore", { path: LEANSTORE_BINARY, args: [] })
    : spawnScript("store_host.ts", []);
  const ready = JSON.parse(await process.firstLine) as { url: string; control: string; pid: number };
  const call = async <T>(method: string, path: string): Promise<T> => {
    const response = await fetch(`${ready.control}${path}`, { method });
    if (!response.ok) throw new Error(`store host: ${method} ${path} answered ${response.status}`);
    return await response.json() as T;
  };
  const orNaN = (value: number | null | undefined) => value ?? NaN;
  return {
    kind,
    url: ready.url,
    pid: process.pid,
    setLatency: async (ms) => void await call("POST", `/latency?ms=${ms}`),
    reset: async () => void await call("POST", "/reset"),
    progress: () => call<StoreProgress>("GET", "/progress"),
    startWindow: async () => void await call("POST", "/window/start"),
    stopWindow: async () => {
      const posts = await call<PostLatency>("POST", "/window/stop");
      return { ...posts, mean: orNaN(posts.mean), p50: orNaN(posts.p50), p99: orNaN(posts.p99) };
    },
    startLive: async () => void await call("POST", "/live/start"),
    stopLive: async () => new Map(await call<Array<[string, number]>>("POST", "/live/stop")),
    close: () => process.close(),
  };
}
