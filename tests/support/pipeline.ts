/**
 * What most integration tests share: a fresh topic and group on the shared broker, a stand-in EventStore,
 * distinct valid FHIR messages made from the fixtures, and polling with a deadline.
 */
import { committedOffsets, createTopic, endOffsets, testBroker, uniqueName } from "./broker.ts";
import { type EventStore, type EventStoreOptions, startEventStore } from "./eventstore.ts";
import { type FhirBundle, loadFixtures, messageIdOf, withNewIds } from "./fhir_variants.ts";

/** A fresh topic and group on the shared broker, and a stand-in EventStore. */
export interface Pipeline extends AsyncDisposable {
  bootstrap: string;
  topic: string;
  group: string;
  store: EventStore;
}

/** Creates a topic with `partitions` partitions, a group name and a stand-in; dispose to close the stand-in. */
export async function openPipeline(partitions: number, options: EventStoreOptions = {}): Promise<Pipeline> {
  const { bootstrap } = testBroker();
  const topic = uniqueName("fhir");
  await createTopic(bootstrap, topic, partitions);
  const store = await startEventStore(options);
  return {
    bootstrap,
    topic,
    group: uniqueName("group"),
    store,
    [Symbol.asyncDispose]: () => store.close(),
  };
}

/** A valid FHIR message: its bytes, as a producer would write them, and its message id. */
export interface Message {
  bytes: Uint8Array;
  messageId: string;
  bundle: FhirBundle;
}

const encoder = new TextEncoder();

/** `count` distinct valid messages made from the fixtures in turn (fresh ids, same shapes). */
export async function validMessages(count: number): Promise<Message[]> {
  const fixtures = await loadFixtures();
  return Array.from({ length: count }, (_, i) => message(withNewIds(fixtures[i % fixtures.length]!.bundle)));
}

/** Serialises a bundle as a message record's value. */
export function message(bundle: FhirBundle): Message {
  return { bytes: encoder.encode(JSON.stringify(bundle, null, 1)), messageId: messageIdOf(bundle), bundle };
}

/**
 * Polls `condition` every 100 ms until true; an error it throws counts as "not yet" (a group's coordinator
 * may not know a new group at first). Rejects with `what` and the last error after the deadline.
 */
export async function waitUntil(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  const check = async () => {
    try {
      return await condition();
    } catch (error) {
      lastError = error;
      return false;
    }
  };
  while (!(await check())) {
    if (Date.now() > deadline) {
      const detail = lastError === undefined ? "" : ` (last error: ${(lastError as Error).message})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Waits until `group` committed every partition of `topic` that holds records up to its end (a partition
 * without records has nothing to commit). `bootstrap` is a PLAINTEXT listener.
 */
export async function waitUntilCommittedToEnd(
  bootstrap: string,
  group: string,
  topic: string,
  timeoutMs?: number,
): Promise<void> {
  const ends = await endOffsets(bootstrap, topic);
  await waitUntil("every partition committed to its end", async () => {
    const committed = await committedOffsets(bootstrap, group, topic);
    return [...ends].every(([partition, end]) => end === 0 || committed.get(partition) === end);
  }, timeoutMs);
}

/** The `x-request-id` of every request the stand-in saw, in order. */
export function requestIds(store: EventStore): string[] {
  return store.requests().map((r) => r.headers["x-request-id"] ?? "");
}
