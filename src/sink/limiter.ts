/** A counting semaphore: at most `max` holders at once, served in arrival order. */
export interface Limiter {
  /** Waits for a slot; rejects with the signal's reason if it aborts first. */
  acquire(signal: AbortSignal): Promise<void>;
  /** Takes a slot if one is free now; false otherwise. */
  tryAcquire(): boolean;
  release(): void;
}

/** Creates a limiter with `max` slots. */
export function createLimiter(max: number): Limiter {
  let active = 0;
  const waiting: Array<() => void> = [];
  const tryAcquire = (): boolean => {
    if (active >= max) return false;
    active++;
    return true;
  };
  return {
    acquire(signal) {
      if (signal.aborted) return Promise.reject(signal.reason);
      if (tryAcquire()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const grant = () => {
          signal.removeEventListener("abort", onAbort);
          active++;
          resolve();
        };
        const onAbort = () => {
          waiting.splice(waiting.indexOf(grant), 1);
          reject(signal.reason);
        };
        waiting.push(grant);
        signal.addEventListener("abort", onAbort, { once: true });
      });
    },
    tryAcquire,
    release() {
      active--;
      waiting.shift()?.();
    },
  };
}
