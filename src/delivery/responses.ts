import type { Outcome } from "./outcome.ts";

/**
 * A response (a MessageHeader with `response.identifier`) must not overtake the message it answers: the
 * EventStore refuses it with 422 "Message with ID=… does not exist." until that message is stored. On the
 * platform a record's key is its own message id, so a request and its response usually sit on different
 * partitions, and either may be ahead.
 */

/** The EventStore's answer to a response whose request it has not stored (yet). */
export function isUnknownRequest(outcome: Outcome): boolean {
  return outcome.kind === "rejected" && outcome.status === 422 &&
    /Message with ID=\S+ does not exist\./.test(outcome.diagnostics ?? outcome.reason);
}

/** The messages being delivered in this process, so that a response can wait for its request. */
export interface RequestWaits {
  /** Marks message `id` as being delivered; call the result once its delivery ended. */
  taken(id: string | undefined): () => void;
  /** Waits (at most `maxMs`) until message `id` ended, if it is being delivered; at once otherwise. */
  before(id: string, maxMs: number, sleep: (ms: number) => Promise<void>): Promise<void>;
}

export function createRequestWaits(): RequestWaits {
  const delivering = new Map<string, Promise<void>>();
  return {
    taken(id) {
      if (id === undefined) return () => {};
      const key = id.toLowerCase();
      const { promise, resolve } = Promise.withResolvers<void>();
      delivering.set(key, promise);
      return () => {
        if (delivering.get(key) === promise) delivering.delete(key);
        resolve();
      };
    },
    async before(id, maxMs, sleep) {
      const request = delivering.get(id.toLowerCase());
      // Bounded, so that messages answering each other cannot wait for each other for ever.
      if (request) await Promise.race([request, sleep(maxMs)]);
    },
  };
}
