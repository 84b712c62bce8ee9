/**
 * What the EventStore's OperationOutcome says, in two versions. Its diagnostics may quote the record
 * (HAPI quotes an invalid value, a parser quotes the text around an error), and records are health data:
 * the log, which more people read than the topic, gets a version without the record's content; the dead
 * letter, which sits beside the whole message anyway, gets the text in full.
 */
import { isObject, parseJsonObject } from "./json.ts";

/** An OperationOutcome's texts: `logged` for log lines, `full` for the dead letter. */
export interface StoreSaid {
  logged: string;
  full: string;
}

/** Nothing said (no body, or no OperationOutcome). */
export const NOTHING_SAID: StoreSaid = { logged: "", full: "" };

/**
 * Reads an OperationOutcome body. `logged` has, per issue, its diagnostics (or details, or code) and
 * location with quoted text, runs of six or more digits and every text value of `record` taken out; `full`
 * has the diagnostics as they are. Both empty when the body is no OperationOutcome. Pure.
 */
export function readOperationOutcome(body: string, record?: Uint8Array): StoreSaid {
  const parsed = parseJsonObject(body);
  if (parsed?.resourceType !== "OperationOutcome" || !Array.isArray(parsed.issue)) {
    return NOTHING_SAID;
  }
  const issues = parsed.issue.filter(isObject).map((issue) => {
    const details = isObject(issue.details) ? issue.details.text : undefined;
    const text = issue.diagnostics ?? details ?? issue.code;
    const where = [issue.expression, issue.location].flatMap((paths) => Array.isArray(paths) ? paths : [])
      .find((path) => typeof path === "string");
    return { text: typeof text === "string" ? text : "", where: where as string | undefined };
  }).filter((issue) => issue.text !== "");
  if (issues.length === 0) return NOTHING_SAID;
  const values = record === undefined ? [] : recordValues(record);
  const logged = issues.map(({ text, where }) => {
    const at = where === undefined ? "" : ` (at ${scrub(where, values)})`;
    return `${scrub(text, values)}${at}`;
  });
  return { logged: logged.join("; "), full: issues.map((issue) => issue.text).join("; ") };
}

/** Text values this short are left in: "Task" or "draft" say nothing about a patient. */
const MIN_SCRUBBED_VALUE_LENGTH = 6;
/** Values of these keys are codes the EventStore names in its own texts ("Bundle must be of type 'message'"). */
const CODE_KEYS = new Set(["resourceType", "type", "status", "intent", "mode", "use"]);

/** `text` without `values`, echoed JSON, quoted spans (but HAPI's own `element="…"`) and long digit runs. Pure. */
export function scrub(text: string, values: readonly string[]): string {
  let result = text;
  for (const value of values) {
    if (result.includes(value)) result = result.replaceAll(value, "…");
  }
  return result
    .replace(/\{[\s\S]*\}/g, "{…}") // an echo of JSON, whose quotes nest
    // A ' after a letter is an apostrophe ("Can't"), not a quote.
    .replace(
      /element="[^"]*"|"[^"]*"|(?<![A-Za-z])'[^']*'/g,
      (quoted) => quoted.startsWith("element=") ? quoted : `${quoted[0]}…${quoted[0]}`,
    )
    .replace(/\d{6,}/g, "…");
}

/** Every distinct text (and number) value of a JSON record long enough to matter, the longest first. */
function recordValues(record: Uint8Array): string[] {
  const parsed = parseJsonObject(new TextDecoder().decode(record));
  const values = new Set<string>();
  const walk = (value: unknown, key: string | undefined) => {
    if (typeof value === "string" || typeof value === "number") {
      const text = String(value);
      if (text.length >= MIN_SCRUBBED_VALUE_LENGTH && !(key !== undefined && CODE_KEYS.has(key))) {
        values.add(text);
      }
    } else if (Array.isArray(value)) {
      for (const item of value) walk(item, key);
    } else if (isObject(value)) {
      for (const [name, item] of Object.entries(value)) walk(item, name);
    }
  };
  walk(parsed, undefined);
  return [...values].sort((a, b) => b.length - a.length);
}
