/**
 * The benchmark's EventStore: the test stand-in (tests/support/eventstore.ts) in a process of its own, so
 * that its CPU is its own and the harness's timers stay punctual, plus a small control API for the harness:
 *
 *   deno run -A bench/store_host.ts      prints one JSON line {"url", "control", "pid"}, then serves
 *
 * Control (on `control`): POST /latency?ms=N; POST /reset (forget counts and stored messages);
 * GET /progress → {accepted, firstAt, lastAt, at}; POST /window/start, POST /window/stop → POST latency
 * mean and percentiles since the start; POST /live/start, POST /live/stop → [[messageId, storedAt], …].
 *
 * The stand-in keeps every message and every request in memory; the host forgets them every
 * {@link FORGET_EVERY} answers (a replay of a million records would otherwise hold gigabytes). A message
 * posted again after that is stored again instead of being a repeat: both are answered 202 and counted.
 */
import { type RecordedRequest, startEventStore } from "../tests/support/eventstore.ts";
import { percentile } from "./stats.ts";

const FORGET_EVERY = 20_000;
/** POST latencies kept per window; a window of 100,000 records at most needs this many. */
const MAX_SAMPLES = 400_000;

interface HostState {
  latencyMs: number;
  accepted: number;
  firstAt: number | undefined;
  lastAt: number | undefined;
  sinceForget: number;
  /** POST latencies (ms) of 2xx answers since /window/start, or undefined outside a window. */
  window: Float64Array | undefined;
  windowCount: number;
  /** Stored times by message id since /live/start. */
  live: Array<[string, number]> | undefined;
}

async function main(): Promise<void> {
  const state: HostState = {
    latencyMs: 0,
    accepted: 0,
    firstAt: undefined,
    lastAt: undefined,
    sinceForget: 0,
    window: undefined,
    windowCount: 0,
    live: undefined,
  };
  const store = await startEventStore({ onRequest: (request) => onAnswered(state, request) });
  // Forgetting runs outside the request path: reset() replaces the stand-in's lists while requests go on.
  const forget = () => {
    if (state.sinceForget < FORGET_EVERY) return;
    state.sinceForget = 0;
    store.reset(); // also clears the faults: the latency is set again
    store.faults.latency(state.latencyMs);
  };
  const forgetTimer = setInterval(forget, 250);
  const control = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case "POST /latency":
        state.latencyMs = Number(url.searchParams.get("ms") ?? "0");
        store.faults.latency(state.latencyMs);
        return Response.json({ latencyMs: state.latencyMs });
      case "POST /reset":
        store.reset();
        store.faults.latency(state.latencyMs);
        Object.assign(state, { accepted: 0, firstAt: undefined, lastAt: undefined, sinceForget: 0 });
        return Response.json({});
      case "GET /progress":
        return Response.json({
          accepted: state.accepted,
          firstAt: state.firstAt,
          lastAt: state.lastAt,
          at: Date.now(),
        });
      case "POST /window/start":
        state.window = new Float64Array(MAX_SAMPLES);
        state.windowCount = 0;
        return Response.json({ accepted: state.accepted, at: Date.now() });
      case "POST /window/stop": {
        const samples = state.window?.slice(0, state.windowCount).sort() ?? new Float64Array();
        state.window = undefined;
        return Response.json({
          samples: samples.length,
          mean: samples.reduce((sum, ms) => sum + ms, 0) / samples.length,
          p50: percentile(samples, 0.5),
          p99: percentile(samples, 0.99),
        });
      }
      case "POST /live/start":
        state.live = [];
        return Response.json({});
      case "POST /live/stop": {
        const live = state.live ?? [];
        state.live = undefined;
        return Response.json(live);
      }
      default:
        await req.body?.cancel();
        return new Response("not found", { status: 404 });
    }
  });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      clearInterval(forgetTimer);
      await store.close();
      await control.shutdown();
    })();
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => void stop());
  console.log(
    JSON.stringify({ url: store.url, control: `http://127.0.0.1:${control.addr.port}`, pid: Deno.pid }),
  );
  await control.finished;
  await stop();
}

function onAnswered(state: HostState, request: RecordedRequest): void {
  if (request.status === null || request.status < 200 || request.status >= 300) return;
  const now = Date.now();
  state.accepted++;
  state.sinceForget++;
  state.firstAt ??= now;
  state.lastAt = now;
  if (state.window && state.windowCount < state.window.length) {
    state.window[state.windowCount++] = now - request.receivedAt.getTime();
  }
  if (state.live && request.messageId !== null) state.live.push([request.messageId, now]);
}

await main();
