/**
 * The records of one partition that were handed out for delivery, and the offset that is safe to commit:
 * the first record not yet accounted for (delivered, rejected and skipped, or dead-lettered). Completions
 * may arrive in any order; the commit point only moves over an unbroken run of accounted records.
 * Offsets need not be contiguous (compaction and transaction markers leave gaps).
 */
export class PartitionOffsets {
  /** Handed-out offsets in ascending order, from `head` on; earlier slots are already passed. */
  #offsets: number[] = [];
  #accounted = new Set<number>();
  #head = 0;
  #lastAdded: number | undefined;

  /** Records that a record was handed out; offsets must be added in ascending order. */
  add(offset: number): void {
    if (this.#lastAdded !== undefined && offset <= this.#lastAdded) {
      throw new RangeError(`offset ${offset} added after ${this.#lastAdded}: offsets must ascend`);
    }
    this.#offsets.push(offset);
    this.#lastAdded = offset;
  }

  /** Records that a handed-out record is accounted for. */
  complete(offset: number): void {
    if (!this.#isPending(offset)) throw new RangeError(`offset ${offset} is not in flight`);
    this.#accounted.add(offset);
    while (this.#head < this.#offsets.length && this.#accounted.delete(this.#offsets[this.#head]!)) {
      this.#head++;
    }
    // Drop the passed prefix now and then, so memory follows the records in flight, not the backlog.
    if (this.#head > 1024 && this.#head * 2 > this.#offsets.length) {
      this.#offsets = this.#offsets.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The offset to commit (the next one to read), or undefined while nothing was ever handed out. */
  committable(): number | undefined {
    if (this.#head < this.#offsets.length) return this.#offsets[this.#head];
    return this.#lastAdded === undefined ? undefined : this.#lastAdded + 1;
  }

  /**
   * The records before `offset` were deleted (retention) and none will be handed out: with nothing in
   * flight, the commit point moves to `offset`.
   */
  skipTo(offset: number): void {
    if (this.inFlight() > 0 || (this.#lastAdded !== undefined && offset <= this.#lastAdded + 1)) return;
    this.#offsets = [];
    this.#accounted.clear();
    this.#head = 0;
    this.#lastAdded = offset - 1;
  }

  /** The highest offset handed out so far. */
  lastAdded(): number | undefined {
    return this.#lastAdded;
  }

  /** How many handed-out records are not yet accounted for. */
  inFlight(): number {
    return this.#offsets.length - this.#head - this.#accounted.size;
  }

  #isPending(offset: number): boolean {
    if (this.#accounted.has(offset)) return false;
    // Binary search: the pending window is sorted.
    let low = this.#head;
    let high = this.#offsets.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const value = this.#offsets[middle]!;
      if (value === offset) return true;
      if (value < offset) low = middle + 1;
      else high = middle - 1;
    }
    return false;
  }
}
