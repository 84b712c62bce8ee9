import type { Handoff, KafkaClient } from "../kafka/client.ts";

/** What a run by hand changes in the source. */
export interface SourceBounds {
  /** Each partition's end offset, once known: records from it on are not taken. */
  end(): ReadonlyMap<number, number> | undefined;
  /** False for a dry run: nothing is committed. */
  commit: boolean;
}

/**
 * A source that stops at the end offsets noted at start: a batch is cut before the end, and a partition
 * whose next records are all past it is paused for good, so records written after the start are neither
 * delivered nor counted. With `commit: false` it commits nothing.
 */
export function boundSource(source: KafkaClient, bounds: SourceBounds): KafkaClient {
  const noCommit = () => Promise.resolve();
  const limit = (handoff: Handoff): Handoff | undefined => {
    const end = bounds.end()?.get(handoff.partition);
    const records = end === undefined ? handoff.records : handoff.records.filter((r) => r.offset < end);
    if (records.length === 0 && handoff.records.length > 0) {
      handoff.pause(); // past the end: never resumed
      return undefined;
    }
    return { ...handoff, records, commit: bounds.commit ? handoff.commit : noCommit };
  };
  return {
    ...source,
    start(events) {
      return source.start({
        ...events,
        onBatch(handoff) {
          const limited = limit(handoff);
          if (limited !== undefined) events.onBatch(limited);
        },
      });
    },
  };
}
