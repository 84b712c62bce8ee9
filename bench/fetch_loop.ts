/**
 * The HTTP ceiling: a bare fetch loop keeping C POSTs in flight against the stand-in, with the keep-alive
 * pool sized to C as eventsink's is, over distinct valid messages made beforehand (repeated in turn).
 *
 *   deno run -A bench/fetch_loop.ts <eventstore-url> <concurrency> <fixtures|10k> [distinct]
 */
import { messageMaker, type SizeClass } from "./messages.ts";

const [url, concurrencyText, size, distinctText] = Deno.args;
const concurrency = Number(concurrencyText);
if (!url || !(concurrency >= 1) || (size !== "fixtures" && size !== "10k")) {
  console.error("usage: fetch_loop.ts <eventstore-url> <concurrency> <fixtures|10k> [distinct]");
  Deno.exit(2);
}
const make = await messageMaker(size as SizeClass);
const bodies = Array.from({ length: Number(distinctText ?? "5000") }, () => make().bytes);
const endpoint = `${url}/fhir/4.0/$process-message`;
const client = Deno.createHttpClient({ poolMaxIdlePerHost: concurrency, http1: true, http2: false });
let next = 0;
let failures = 0;
console.log(JSON.stringify({ ready: true, bodies: bodies.length }));

async function worker(): Promise<void> {
  for (;;) {
    const body = bodies[next++ % bodies.length]! as Uint8Array<ArrayBuffer>;
    try {
      const response = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/fhir+json; fhirVersion=4.0" },
        body,
        client,
      });
      await response.arrayBuffer();
      if (!response.ok) failures++;
    } catch {
      failures++;
    }
    if (failures > 0 && failures % 1000 === 1) console.error(`fetch loop: ${failures} failures`);
  }
}

await Promise.all(Array.from({ length: concurrency }, worker));
