/** eventsink's release version; `make build` stamps the binary with `git describe` (see Makefile). */
export const VERSION = "0.1.0";

/** The `User-Agent` sent to the EventStore, so its access log names the sender and its version. */
export const USER_AGENT = `eventsink/${VERSION} (Deno ${Deno.version.deno})`;
