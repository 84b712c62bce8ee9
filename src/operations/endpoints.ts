import { EXPOSITION_CONTENT_TYPE } from "./exposition.ts";
import type { Verdict } from "./health.ts";
import type { Logger } from "../log.ts";
import type { Monitor } from "./monitor.ts";

/** Where the HTTP endpoint listens (see --http-listen). */
export interface ListenAddress {
  hostname: string;
  port: number;
}

/** `host:port`, with an IPv6 address in brackets. */
export function formatAddress(address: ListenAddress): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}

type Handler = (monitor: Monitor) => Response;

const verdict = (check: (monitor: Monitor) => Verdict): Handler => (monitor) => {
  const { ok, reason } = check(monitor);
  return new Response(`${ok ? "ok" : "not ok"}: ${reason}\n`, {
    status: ok ? 200 : 503,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
  });
};
const live = verdict((monitor) => monitor.liveness());
const ready = verdict((monitor) => monitor.readiness());
const metrics: Handler = (monitor) =>
  new Response(monitor.metrics(), { headers: { "content-type": EXPOSITION_CONTENT_TYPE } });

/** The paths, with the original service's `/actuator/…` names as aliases. */
export const ROUTES: Readonly<Record<string, Handler>> = {
  "/healthz": live,
  "/readyz": ready,
  "/metrics": metrics,
  "/actuator/live": live,
  "/actuator/ready": ready,
  "/actuator/metrics": metrics,
};

/** Serves health, readiness and metrics; throws at once when the address cannot be listened on. */
export function serveEndpoints(address: ListenAddress, monitor: Monitor, log: Logger): Deno.HttpServer {
  return Deno.serve({
    hostname: address.hostname,
    port: address.port,
    onListen: (addr) => log.info("HTTP endpoint listening", { hostname: addr.hostname, port: addr.port }),
    onError: (error) => {
      log.error("HTTP endpoint failed to answer", { error: (error as Error).message });
      return new Response("internal error\n", { status: 500 });
    },
  }, (request) => {
    const path = new URL(request.url).pathname;
    const route = Object.hasOwn(ROUTES, path) ? ROUTES[path] : undefined;
    if (route === undefined) return new Response("not found\n", { status: 404 });
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    return route(monitor);
  });
}
