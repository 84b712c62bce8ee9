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
  /** Per message being delivered, its end: made only when a response waits for it (rarely; not per record). */
  const delivering = new Map<string, { ended?: PromiseWithResolvers<void> }>();
  return {
    taken(id) {
      if (id === undefined) return () => {};
      const key = id.toLowerCase();
      const entry: { ended?: PromiseWithResolvers<void> } = {};
      delivering.set(key, entry);
      return () => {
        if (delivering.get(key) === entry) delivering.delete(key);
        entry.ended?.resolve();
      };
    },
    async before(id, maxMs, sleep) {
      const entry = delivering.get(id.toLowerCase());
      // Bounded, so that messages answering each other cannot wait for each other for ever.
      if (entry) await Promise.race([(entry.ended ??= Promise.withResolvers()).promise, sleep(maxMs)]);
    },
  };
}
