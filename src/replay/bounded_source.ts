import type { Batch, Consumer } from "../kafka/consumer.ts";

/** What a run by hand changes in the consumer. */
export interface SourceBounds {
  /** Each partition's end offset, once known: records from it on are not taken. */
  end(): ReadonlyMap<number, number> | undefined;
  /** False for a dry run: nothing is committed. */
  commit: boolean;
  /** KafkaJS found a partition's fetch offset deleted (retention) and moves it to its earliest record. */
  moved?: (partition: number) => void;
}

/**
 * A consumer that stops at the end offsets noted at start: a batch is cut before the end, and a partition
 * whose next records are all past it is paused for good, so records written after the start are neither
 * delivered nor counted. With `commit: false` it commits nothing.
 */
export function boundSource(consumer: Consumer, bounds: SourceBounds): Consumer {
  const noCommit = () => Promise.resolve();
  const limit = (batch: Batch): Batch | undefined => {
    const end = bounds.end()?.get(batch.partition);
    const records = end === undefined ? batch.records : batch.records.filter((r) => r.offset < end);
    if (records.length === 0 && batch.records.length > 0) {
      batch.pause(); // past the end: never resumed
      return undefined;
    }
    return { ...batch, records, commit: bounds.commit ? batch.commit : noCommit };
  };
  return {
    ...consumer,
    start(events) {
      return consumer.start({
        ...events,
        onBatch(batch) {
          const limited = limit(batch);
          if (limited !== undefined) events.onBatch(limited);
        },
        onOffsetOutOfRange(topic, partition) {
          bounds.moved?.(partition);
          events.onOffsetOutOfRange(topic, partition);
        },
      });
    },
  };
}
