/**
 * Outward text: every text eventsink prints or publishes (log lines, `check`'s report, a replay's summary,
 * dead-letter headers) passes through `present`, which masks every secret eventsink knows, in every form it
 * may travel in, then neutralises what could forge a line or a terminal's state, then cuts to length — in
 * that order, so that no cut leaves a secret's prefix behind. Text from the other side enters eventsink's
 * reasons whole (bodies are bounded where they are read) and is cut only here.
 */

/** What a secret looks like wherever it is printed. */
export const REDACTED = "[redacted]";

/** Masks secret values in text, in every encoding they may have travelled in. */
export interface Redactor {
  /** Masks `value` for as long as the process runs (configured secrets). */
  add(value: string): void;
  /** Masks `value` among the most recent rotating values (access tokens), forgetting the oldest. */
  addRotating(value: string): void;
  /** `text` with every known value, in each of its forms, replaced by "[redacted]". */
  apply(text: string): string;
}

/** Values shorter than this are not masked: replacing every "ab" would garble the log, not protect it. */
const MIN_REDACTED_LENGTH = 4;
/** Rotating values kept: the current token, the previous ones still in flight, with room to spare. */
const ROTATING_KEPT = 8;

/**
 * The forms a secret can be echoed in: as it is and trimmed; url-encoded (a form body, a query) both ways;
 * base64 and base64url, padded or not (a header). The longest first, so that no form leaves part of a
 * longer one behind. Pure.
 */
export function secretForms(value: string): string[] {
  const forms = new Set<string>();
  for (const text of [value, value.trim()]) {
    forms.add(text);
    forms.add(encodeURIComponent(text));
    forms.add(formEncode(text));
    const base64 = base64Utf8(text);
    forms.add(base64);
    forms.add(base64.replace(/=+$/, ""));
    forms.add(base64.replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_"));
  }
  return [...forms].filter((form) => form.length >= MIN_REDACTED_LENGTH).sort((a, b) => b.length - a.length);
}

/** `text` as application/x-www-form-urlencoded writes it (space as `+`). */
export function formEncode(text: string): string {
  return new URLSearchParams({ x: text }).toString().slice(2);
}

/** The base64 of `text`'s UTF-8 bytes. */
export function base64Utf8(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

/** Creates an empty {@link Redactor}. */
export function createRedactor(): Redactor {
  const fixed = new Set<string>();
  const rotating: string[][] = [];
  let all: string[] = []; // every form, the longest first: rebuilt on a change, not per line
  const rebuild = () => all = [...fixed, ...rotating.flat()].sort((a, b) => b.length - a.length);
  return {
    add(value) {
      for (const form of secretForms(value)) fixed.add(form);
      rebuild();
    },
    addRotating(value) {
      const forms = secretForms(value);
      if (forms.length === 0 || rotating.some((known) => known[0] === forms[0])) return;
      rotating.push(forms);
      if (rotating.length > ROTATING_KEPT) rotating.shift();
      rebuild();
    },
    apply(text) {
      let result = text;
      for (const form of all) {
        if (result.includes(form)) result = result.replaceAll(form, REDACTED);
      }
      return result;
    },
  };
}

/** Control characters (C0, DEL, C1: line breaks, ANSI escapes) and the Unicode line separators. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;
const NAMED_ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * `text` with every control character written as an escape (`\n`, `\x1b`, `\u2028`), so that no text can
 * end a log line, start a forged one or colour a terminal; a leading `<N>`, which journald would take for a
 * priority, is escaped too. Pure.
 */
export function neutralise(text: string): string {
  const escaped = text.replace(CONTROL, (char) => {
    const code = char.charCodeAt(0);
    return NAMED_ESCAPES[char] ?? (code < 0x100 ? `\\x${hex(code, 2)}` : `\\u${hex(code, 4)}`);
  });
  return escaped.replace(/^<(\d)>/, "\\<$1>");
}

function hex(code: number, digits: number): string {
  return code.toString(16).padStart(digits, "0");
}

/** `text` cut to at most `max` characters, the cut marked with "…". Pure. */
export function bound(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Longest text of one log field or report line: room for a reason and its diagnostics, never a body. */
export const MAX_OUTWARD_CHARS = 2_000;

/** Masks, neutralises and cuts one text for the outside, in that order. */
export type Present = (text: string, max?: number) => string;

/** The {@link Present} of a redactor (a fresh one, masking nothing, when none is given). */
export function presenter(redactor: Pick<Redactor, "apply"> = createRedactor()): Present {
  return (text, max = MAX_OUTWARD_CHARS) => bound(neutralise(redactor.apply(text)), max);
}

/** A text of several lines (a report) presented line by line, keeping its line breaks. */
export function presentLines(present: Present, text: string): string {
  return text.split("\n").map((line) => present(line)).join("\n");
}
