/** The harness's handle on bench/store_host.ts: the stand-in EventStore in its own process. */
import { type ScriptProcess, spawnScript } from "./children.ts";

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

/** A running stand-in host. */
export interface StoreHost {
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

/** Starts bench/store_host.ts and waits for its ready line. */
export async function startStoreHost(): Promise<StoreHost> {
  const process: ScriptProcess = spawnScript("store_host.ts", []);
  const ready = JSON.parse(await process.firstLine) as { url: string; control: string; pid: number };
  const call = async <T>(method: string, path: string): Promise<T> => {
    const response = await fetch(`${ready.control}${path}`, { method });
    if (!response.ok) throw new Error(`store host: ${method} ${path} answered ${response.status}`);
    return await response.json() as T;
  };
  return {
    url: ready.url,
    pid: process.pid,
    setLatency: async (ms) => void await call("POST", `/latency?ms=${ms}`),
    reset: async () => void await call("POST", "/reset"),
    progress: () => call<StoreProgress>("GET", "/progress"),
    startWindow: async () => void await call("POST", "/window/start"),
    stopWindow: () => call<PostLatency>("POST", "/window/stop"),
    startLive: async () => void await call("POST", "/live/start"),
    stopLive: async () => new Map(await call<Array<[string, number]>>("POST", "/live/stop")),
    close: () => process.close(),
  };
}
