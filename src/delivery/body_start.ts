/**
 * The first `max` bytes of a body that comes in chunks: all eventsink keeps of an answer (an
 * OperationOutcome's start, a token endpoint's JSON), whichever client read it.
 */
export class BodyStart {
  #parts: Uint8Array[] = [];
  #kept = 0;
  #seen = 0;
  #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** `max` bytes are kept: the rest need not be read. */
  get full(): boolean {
    return this.#kept >= this.#max;
  }

  /** Every byte added was kept. */
  get complete(): boolean {
    return this.#seen <= this.#max;
  }

  add(bytes: Uint8Array): void {
    this.#seen += bytes.length;
    const room = this.#max - this.#kept;
    if (room <= 0) return;
    const kept = bytes.length <= room ? bytes : bytes.subarray(0, room);
    this.#parts.push(kept);
    this.#kept += kept.length;
  }

  /** What was kept, decoded as UTF-8 (a sequence cut at the end becomes U+FFFD). */
  text(): string {
    if (this.#parts.length === 1) return utf8.decode(this.#parts[0]!);
    const all = new Uint8Array(this.#kept);
    let at = 0;
    for (const part of this.#parts) {
      all.set(part, at);
      at += part.length;
    }
    return utf8.decode(all);
  }
}

const utf8 = new TextDecoder();
