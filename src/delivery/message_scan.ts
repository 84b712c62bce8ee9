/** A message's ids from its MessageHeader: its own, and the one it answers (`response.identifier`). */
export interface MessageRefs {
  id?: string;
  answers?: string;
}

/** Why a value announced as JSON can never be a FHIR message, or the ids of its MessageHeader. */
export type ScanResult = { problem: string } | { refs: MessageRefs };

/**
 * The reasons are fixed texts: a parser's message would quote the value, and values are health data.
 * ($process-message takes a Bundle; the EventStore answers 500 to anything else, on every attempt.)
 */
const NOT_UTF8 = { problem: "the value is not valid UTF-8, so it cannot be FHIR JSON" };
const NOT_JSON = { problem: "the value is not valid JSON although its Content-Type says JSON" };
const NOT_OBJECT = { problem: "the value is JSON but not a FHIR resource (not an object)" };
const NO_RESOURCE_TYPE = { problem: "the value is JSON but not a FHIR resource (no resourceType)" };
const NOT_BUNDLE = { problem: "the value is a FHIR resource other than a Bundle, so it cannot be a message" };

/**
 * Judges a value announced as JSON in one pass over its bytes, building nothing: strict UTF-8 (a leading
 * BOM allowed, as TextDecoder allows it), JSON by RFC 8259, and the fields a message is judged by — the
 * top `resourceType`, and `entry[0].resource`'s `resourceType`, `id` and `response.identifier` — by
 * JSON.parse's rules (the last of duplicate keys wins). It answers as decoding and JSON.parse would (its
 * test compares the two on mutated messages) at a fraction of their CPU: decoding and parsing every record
 * took a fifth of eventsink's CPU per record (docs/performance.md).
 */
export function scanMessage(value: Uint8Array): ScanResult {
  const scan = new Scan(value);
  const end = scan.run();
  if (end === "utf8") return NOT_UTF8;
  if (end === "json") return validUtf8From(value, scan.pos) ? NOT_JSON : NOT_UTF8;
  if (!scan.topIsObject) return NOT_OBJECT;
  const type = scan.strings[TOP_TYPE];
  if (type === undefined) return NO_RESOURCE_TYPE;
  if (type !== "Bundle") return NOT_BUNDLE;
  if (scan.strings[HEADER_TYPE] !== "MessageHeader") return { refs: {} };
  const id = scan.strings[HEADER_ID];
  const answers = scan.strings[ANSWERS];
  return { refs: { ...(id !== undefined ? { id } : {}), ...(answers !== undefined ? { answers } : {}) } };
}

// What a value is, where it stands: only these few places matter; everything else is OTHER.
const OTHER = 0;
const TOP = 1; // the resource
const ENTRIES = 2; // its `entry`
const ENTRY0 = 3; // `entry[0]`
const HEADER = 4; // `entry[0].resource`
const RESPONSE = 5; // `entry[0].resource.response`

// The string values kept (indexes of Scan.strings); NONE: not kept.
const NONE = -1;
const TOP_TYPE = 0;
const HEADER_TYPE = 1;
const HEADER_ID = 2;
const ANSWERS = 3;

const OBJECT = 0;
const ARRAY = 1;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const text = new TextDecoder();
/** The char codes of a short ASCII text being made (reused: values are node Buffers, whose subarray is dear). */
const codes: number[] = [];

class Scan {
  readonly #b: Uint8Array;
  pos = 0;
  topIsObject = false;
  /** The kept string values: undefined while absent or not a string. */
  readonly strings: Array<string | undefined> = [undefined, undefined, undefined, undefined];
  readonly #kinds: number[] = [];
  readonly #roles: number[] = [];
  /** The place and kept slot of the value about to be read. */
  #role = TOP;
  #slot = NONE;

  constructor(bytes: Uint8Array) {
    this.#b = bytes;
    if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) this.pos = 3;
  }

  /** Reads the whole value: undefined when it is JSON, else what it broke on (at `pos`). */
  run(): "utf8" | "json" | undefined {
    const b = this.#b;
    for (;;) {
      this.#skipSpace();
      const read = this.#value();
      if (read === "opened") continue;
      if (read !== undefined) return read;
      // After a value: close what it ends, or move on to the next member or element.
      for (;;) {
        const depth = this.#kinds.length;
        this.#skipSpace();
        if (depth === 0) return this.pos === b.length ? undefined : "json";
        const c = b[this.pos];
        const kind = this.#kinds[depth - 1];
        if (c === COMMA) {
          this.pos++;
          if (kind === OBJECT) {
            const failedKey = this.#member();
            if (failedKey !== undefined) return failedKey;
          } else {
            this.#role = OTHER;
            this.#slot = NONE;
          }
          break;
        }
        if (c !== (kind === OBJECT ? 0x7d : 0x5d)) return "json";
        this.pos++;
        this.#pop();
      }
    }
  }

  /** Reads a scalar or an empty container; or opens a container and readies its first member or element. */
  #value(): "utf8" | "json" | "opened" | undefined {
    const b = this.#b;
    const role = this.#role;
    const slot = this.#slot;
    if (slot !== NONE) this.strings[slot] = undefined;
    // A value at a place replaces what an earlier duplicate key had put there.
    if (role === ENTRIES || role === ENTRY0 || role === HEADER) {
      this.strings[HEADER_TYPE] = this.strings[HEADER_ID] = this.strings[ANSWERS] = undefined;
    } else if (role === RESPONSE) this.strings[ANSWERS] = undefined;
    const c = b[this.pos];
    if (c === 0x7b) {
      if (role === TOP && this.#kinds.length === 0) this.topIsObject = true;
      if (this.#open(OBJECT, role === ENTRIES ? OTHER : role, 0x7d)) return undefined;
      return this.#member() ?? "opened";
    }
    if (c === 0x5b) {
      if (this.#open(ARRAY, role === ENTRIES ? ENTRIES : OTHER, 0x5d)) return undefined;
      this.#role = role === ENTRIES ? ENTRY0 : OTHER;
      this.#slot = NONE;
      return "opened";
    }
    if (c === QUOTE) {
      const start = this.pos + 1;
      const failed = this.#string();
      if (failed !== undefined) return failed;
      if (slot !== NONE) this.strings[slot] = this.#text(start, this.pos - 1, this.#escaped);
      return undefined;
    }
    if (c === MINUS || (c !== undefined && c >= ZERO && c <= NINE)) return this.#number();
    if (this.#word(c === 0x74 ? "true" : c === 0x66 ? "false" : "null")) return undefined;
    return "json";
  }

  /** Opens a container at `pos`; true when it closes at once (it is empty). */
  #open(kind: number, role: number, close: number): boolean {
    this.pos++;
    this.#push(kind, role);
    this.#skipSpace();
    if (this.#b[this.pos] !== close) return false;
    this.pos++;
    this.#pop();
    return true;
  }

  /** Reads a member's key and colon, and readies its value's place. */
  #member(): "utf8" | "json" | undefined {
    const b = this.#b;
    this.#skipSpace();
    if (b[this.pos] !== QUOTE) return "json";
    const start = this.pos + 1;
    const failed = this.#string();
    if (failed !== undefined) return failed;
    const end = this.pos - 1;
    const parent = this.#roles[this.#roles.length - 1]!;
    this.#role = OTHER;
    this.#slot = NONE;
    if (parent !== OTHER) {
      // (No closure here: this runs for every key of the resource and its header.)
      const key = this.#escaped ? this.#text(start, end, true) : undefined;
      if (parent === TOP) {
        if (this.#keyIs(start, end, key, "resourceType")) this.#slot = TOP_TYPE;
        else if (this.#keyIs(start, end, key, "entry")) this.#role = ENTRIES;
      } else if (parent === ENTRY0) {
        if (this.#keyIs(start, end, key, "resource")) this.#role = HEADER;
      } else if (parent === HEADER) {
        if (this.#keyIs(start, end, key, "resourceType")) this.#slot = HEADER_TYPE;
        else if (this.#keyIs(start, end, key, "id")) this.#slot = HEADER_ID;
        else if (this.#keyIs(start, end, key, "response")) this.#role = RESPONSE;
      } else if (parent === RESPONSE && this.#keyIs(start, end, key, "identifier")) this.#slot = ANSWERS;
    }
    this.#skipSpace();
    if (b[this.pos] !== COLON) return "json";
    this.pos++;
    return undefined;
  }

  /** Whether the last string read had an escape. */
  #escaped = false;

  /** Reads a string from its opening quote to past its closing one. */
  #string(): "utf8" | "json" | undefined {
    const b = this.#b;
    let pos = this.pos + 1;
    this.#escaped = false;
    for (;;) {
      const c = b[pos];
      if (c === undefined || c < 0x20) {
        this.pos = pos;
        return "json";
      }
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        this.#escaped = true;
        const e = b[pos + 1];
        if (e === 0x75) {
          if (!(isHex(b[pos + 2]) && isHex(b[pos + 3]) && isHex(b[pos + 4]) && isHex(b[pos + 5]))) {
            this.pos = pos;
            return "json";
          }
          pos += 6;
        } else if (
          e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e ||
          e === 0x72 || e === 0x74
        ) {
          pos += 2;
        } else {
          this.pos = pos;
          return "json";
        }
      } else if (c < 0x80) {
        pos++;
      } else {
        const length = utf8Length(b, pos);
        if (length === 0) {
          this.pos = pos;
          return "utf8";
        }
        pos += length;
      }
    }
    this.pos = pos + 1;
    return undefined;
  }

  /** A string's content (between its quotes) as text; with escapes, as JSON reads them. */
  #text(start: number, end: number, escaped: boolean): string {
    const b = this.#b;
    let ascii = end - start <= 64;
    for (let i = start; ascii && i < end; i++) ascii = b[i]! < 0x80;
    // Ids and resource types are short and ASCII: made without a call into the decoder.
    let raw: string;
    if (ascii) {
      codes.length = 0;
      for (let i = start; i < end; i++) codes.push(b[i]!);
      raw = String.fromCharCode.apply(null, codes);
    } else raw = text.decode(b.subarray(start, end));
    return escaped ? JSON.parse(`"${raw}"`) : raw;
  }

  /** Whether a key (its bytes, or its text when it had escapes) is `name`. */
  #keyIs(start: number, end: number, key: string | undefined, name: string): boolean {
    if (key !== undefined) return key === name;
    if (end - start !== name.length) return false;
    for (let i = 0; i < name.length; i++) if (this.#b[start + i] !== name.charCodeAt(i)) return false;
    return true;
  }

  #number(): "json" | undefined {
    const b = this.#b;
    if (b[this.pos] === MINUS) this.pos++;
    if (b[this.pos] === ZERO) this.pos++;
    else if (!this.#digits()) return "json";
    if (b[this.pos] === DOT) {
      this.pos++;
      if (!this.#digits()) return "json";
    }
    if (b[this.pos] === 0x65 || b[this.pos] === 0x45) {
      this.pos++;
      if (b[this.pos] === PLUS || b[this.pos] === MINUS) this.pos++;
      if (!this.#digits()) return "json";
    }
    return undefined;
  }

  /** Reads one or more digits. */
  #digits(): boolean {
    const b = this.#b;
    const start = this.pos;
    while (b[this.pos]! >= ZERO && b[this.pos]! <= NINE) this.pos++;
    return this.pos > start;
  }

  #word(word: string): boolean {
    for (let i = 0; i < word.length; i++) if (this.#b[this.pos + i] !== word.charCodeAt(i)) return false;
    this.pos += word.length;
    return true;
  }

  #skipSpace(): void {
    const b = this.#b;
    let c = b[this.pos];
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = b[++this.pos];
  }

  #push(kind: number, role: number): void {
    this.#kinds.push(kind);
    this.#roles.push(role);
  }

  #pop(): void {
    this.#kinds.pop();
    this.#roles.pop();
  }
}

function isHex(c: number | undefined): boolean {
  return c !== undefined &&
    ((c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));
}

function isContinuation(c: number | undefined): boolean {
  return c !== undefined && (c & 0xc0) === 0x80;
}

/** The length of the UTF-8 sequence at `i` (RFC 3629: no overlong form, surrogate or beyond U+10FFFF); 0 if invalid. */
function utf8Length(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  if (c < 0xc2) return 0;
  if (c < 0xe0) return isContinuation(b[i + 1]) ? 2 : 0;
  const c1 = b[i + 1];
  if (c1 === undefined) return 0;
  if (c < 0xf0) {
    const low = c === 0xe0 ? 0xa0 : 0x80;
    const high = c === 0xed ? 0x9f : 0xbf;
    return c1 >= low && c1 <= high && isContinuation(b[i + 2]) ? 3 : 0;
  }
  if (c < 0xf5) {
    const low = c === 0xf0 ? 0x90 : 0x80;
    const high = c === 0xf4 ? 0x8f : 0xbf;
    return c1 >= low && c1 <= high && isContinuation(b[i + 2]) && isContinuation(b[i + 3]) ? 4 : 0;
  }
  return 0;
}

/** Whether the bytes from `i` on are valid UTF-8 (those before it were, when the scan stopped at `i`). */
function validUtf8From(b: Uint8Array, i: number): boolean {
  while (i < b.length) {
    const length = utf8Length(b, i);
    if (length === 0) return false;
    i += length;
  }
  return true;
}
