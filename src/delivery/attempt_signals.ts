/** The signal of one POST attempt; `done()` when it has its answer (or failed), which forgets it at once. */
export interface AttemptSignal {
  signal: AbortSignal;
  done(): void;
}

/** Signals for POST attempts that share one request timeout. */
export interface AttemptSignals {
  readonly timeoutMs: number;
  /** A signal that aborts with `parent` or, with a TimeoutError, after the timeout. */
  start(parent: AbortSignal): AttemptSignal;
}

interface Entry {
  controller: AbortController;
  deadline: number;
  /** The attempts of its parent, which it leaves when done. */
  siblings: Set<Entry>;
  done: boolean;
}

/**
 * Attempt signals with one listener per parent (a lane's ownership period: a stop or a lost partition) and
 * one timer for all: an EventTarget listener and a timer per attempt cost ~4 % of eventsink's CPU at
 * thousands of requests a second (docs/performance.md). Every attempt has the same timeout, so deadlines
 * come in the order the attempts started: the timer waits for the oldest one, and ended attempts are
 * dropped from the front. (One attempt that hangs until its timeout keeps those after it queued for that
 * long: at most the requests of one timeout, a few dozen bytes each.)
 */
export function createAttemptSignals(timeoutMs: number, now: () => number = Date.now): AttemptSignals {
  const byParent = new WeakMap<AbortSignal, Set<Entry>>();
  const queue: Entry[] = [];
  let head = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const siblingsOf = (parent: AbortSignal): Set<Entry> => {
    let siblings = byParent.get(parent);
    if (siblings === undefined) {
      const all = siblings = new Set();
      byParent.set(parent, all);
      parent.addEventListener("abort", () => {
        for (const entry of all) entry.controller.abort(parent.reason);
        all.clear();
      }, { once: true });
    }
    return siblings;
  };

  /** Drops ended attempts from the front; with none left, the timer too. */
  const dropEnded = () => {
    while (head < queue.length && queue[head]!.done) head++;
    if (head === queue.length) {
      queue.length = head = 0;
      clearTimeout(timer);
      timer = undefined;
    } else if (head > 1024 && head * 2 > queue.length) {
      queue.splice(0, head);
      head = 0;
    }
  };

  /** The timer: aborts the attempts past their deadline, and waits for the oldest one left. */
  const expire = () => {
    timer = undefined;
    const at = now();
    while (head < queue.length && queue[head]!.deadline <= at) {
      const entry = queue[head++]!;
      if (entry.done) continue;
      entry.done = true;
      entry.siblings.delete(entry);
      entry.controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError"));
    }
    dropEnded();
    const next = queue[head];
    if (next !== undefined) timer = setTimeout(expire, Math.max(0, next.deadline - at));
  };

  return {
    timeoutMs,
    start(parent) {
      const controller = new AbortController();
      if (parent.aborted) {
        controller.abort(parent.reason);
        return { signal: controller.signal, done() {} };
      }
      const siblings = siblingsOf(parent);
      const entry: Entry = { controller, deadline: now() + timeoutMs, siblings, done: false };
      siblings.add(entry);
      queue.push(entry);
      timer ??= setTimeout(expire, timeoutMs);
      return {
        signal: controller.signal,
        done() {
          if (entry.done) return;
          entry.done = true;
          siblings.delete(entry);
          if (queue[head] === entry) dropEnded();
        },
      };
    },
  };
}
