/**
 * The secret scan over a whole test run. Tests register every secret they give eventsink and every one a
 * server issues to it; every eventsink process's output is kept (see eventsink_process.ts); at the end
 * tests/run.ts looks for every form of every registered secret in every output.
 *
 * Registered secrets go, one JSON line each, to `$EVENTSINK_TEST_SCAN_DIR/secrets.jsonl`; without that
 * variable (a test file run directly with `deno test`) they are kept in memory only.
 *
 * Independent of src/ on purpose: the forms are worked out here, not by the code under test.
 */
import { join } from "node:path";

/** Names the scan directory of a run. */
export const SCAN_DIR_ENV = "EVENTSINK_TEST_SCAN_DIR";
const SECRETS_FILE = "secrets.jsonl";
/** Where each eventsink process's output goes: `<dir>/output/<pid>.log`. */
export const OUTPUT_DIR = "output";

/** One registered secret: a value, or an OAuth2 client's id and secret (for their HTTP Basic form). */
export type SecretEntry = { value: string } | { id: string; secret: string };

/** A form of a secret found in a text. */
export interface Hit {
  /** The secret's first 4 characters: never the whole secret. */
  secret: string;
  form: string;
  /** Where in the text. */
  index: number;
}

const registered: SecretEntry[] = [];

/** The scan directory of this run, if there is one. */
export function scanDir(): string | undefined {
  return Deno.env.get(SCAN_DIR_ENV) || undefined;
}

/** Registers secrets eventsink was given or was issued: no form of them may ever be printed. */
export function registerSecrets(...values: string[]): void {
  record(values.filter((value) => value.length > 0).map((value) => ({ value })));
}

/** Registers an OAuth2 client's secret, and its HTTP Basic pair with `id` (RFC 6749 §2.3.1). */
export function registerBasic(id: string, secret: string): void {
  record([{ value: secret }, { id, secret }]);
}

/** Every secret registered by this test module (also written to the run's file, if any). */
export function registeredSecrets(): SecretEntry[] {
  return [...registered];
}

function record(entries: SecretEntry[]): void {
  if (entries.length === 0) return;
  registered.push(...entries);
  const dir = scanDir();
  if (dir === undefined) return;
  Deno.mkdirSync(dir, { recursive: true });
  const text = entries.map((entry) => `${JSON.stringify(entry)}\n`).join("");
  Deno.writeTextFileSync(join(dir, SECRETS_FILE), text, { append: true });
}

/** The secrets every test module of the run registered (from the run's file). */
export async function readRegisteredSecrets(dir: string): Promise<SecretEntry[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, SECRETS_FILE));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return text.split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line));
}

/** Forms shorter than this are not looked for: they would match by chance. */
const MIN_FORM_LENGTH = 8;
/** A form at least this long is also looked for by its first {@link PREFIX_LENGTH} characters. */
const PREFIX_FROM_LENGTH = 16;
const PREFIX_LENGTH = 12;

/**
 * Every form in which a secret could be printed: raw; trimmed; with a trailing line break url-encoded;
 * `encodeURIComponent`; form-encoded (space as `+`); standard base64 and base64url of its UTF-8 bytes, with
 * and without padding; for a client id and secret, their HTTP Basic credentials (form-encoded first, as RFC
 * 6749 §2.3.1 says, and also without); and the first 12 characters of each form at least 16 long (what a
 * cut could leave). Keyed by the form's name.
 */
export function secretForms(entry: string | SecretEntry): Map<string, string> {
  const forms = new Map<string, string>();
  const add = (name: string, form: string) => {
    if (form.length >= MIN_FORM_LENGTH && ![...forms.values()].includes(form)) forms.set(name, form);
  };
  if (typeof entry !== "string" && "id" in entry) {
    const encoded = `${formEncode(entry.id)}:${formEncode(entry.secret)}`;
    for (const [name, pair] of [["basic", encoded], ["basic-unencoded", `${entry.id}:${entry.secret}`]]) {
      for (const [variant, form] of base64Forms(pair!)) add(`${name} ${variant}`, form);
    }
  } else {
    const value = typeof entry === "string" ? entry : entry.value;
    add("raw", value);
    add("trimmed", value.trim());
    add("url-encoded with line break", encodeURIComponent(`${value}\n`));
    add("form-encoded with line break", formEncode(`${value}\n`));
    add("url-encoded", encodeURIComponent(value));
    add("form-encoded", formEncode(value));
    for (const [variant, form] of base64Forms(value)) add(variant, form);
    for (const [variant, form] of base64Forms(value.trim())) add(`trimmed ${variant}`, form);
  }
  for (const [name, form] of [...forms]) {
    if (form.length >= PREFIX_FROM_LENGTH) {
      add(`${name}, first ${PREFIX_LENGTH}`, form.slice(0, PREFIX_LENGTH));
    }
  }
  return forms;
}

/** Where in `text` a form of one of `secrets` is: the first place of each form found. */
export function scanText(text: string, secrets: Iterable<string | SecretEntry>): Hit[] {
  return secretScanner(secrets)(text);
}

/**
 * A scan for many secrets over many texts: the forms are indexed by their first characters once, and each
 * text is read in one pass (a whole run's output against every form of every secret would take minutes
 * with one search per form).
 */
export function secretScanner(secrets: Iterable<string | SecretEntry>): (text: string) => Hit[] {
  const byStart = new Map<string, Array<{ secret: string; form: string; value: string }>>();
  // A quick first look: whether any form starts with these two characters.
  const starts = new Uint8Array(1 << 16);
  const seen = new Set<string>();
  for (const secret of secrets) {
    const key = JSON.stringify(secret);
    if (seen.has(key)) continue;
    seen.add(key);
    for (const [form, value] of secretForms(secret)) {
      const start = value.slice(0, MIN_FORM_LENGTH);
      const list = byStart.get(start) ?? [];
      list.push({ secret: nameOf(secret), form, value });
      byStart.set(start, list);
      starts[pairOf(start, 0)] = 1;
    }
  }
  return (text) => {
    const hits: Hit[] = [];
    const found = new Set<object>();
    for (let index = 0; index + MIN_FORM_LENGTH <= text.length; index++) {
      if (starts[pairOf(text, index)] === 0) continue;
      const candidates = byStart.get(text.slice(index, index + MIN_FORM_LENGTH));
      if (candidates === undefined) continue;
      for (const candidate of candidates) {
        if (!found.has(candidate) && text.startsWith(candidate.value, index)) {
          found.add(candidate);
          hits.push({ secret: candidate.secret, form: candidate.form, index });
        }
      }
    }
    return hits;
  };
}

function pairOf(text: string, index: number): number {
  return ((text.charCodeAt(index) & 0xff) << 8) | (text.charCodeAt(index + 1) & 0xff);
}

/** A secret's name in a report: its first 4 characters. */
export function nameOf(secret: string | SecretEntry): string {
  const value = typeof secret === "string" ? secret : "id" in secret ? `${secret.id}:` : secret.value;
  return `${value.slice(0, 4)}…`;
}

/** Hits as one line each, naming each secret by its prefix only. */
export function describeHits(hits: Hit[]): string {
  return hits.map((hit) => `${hit.secret} (${hit.form}) at ${hit.index}`).join("; ");
}

/** Form encoding (application/x-www-form-urlencoded), as a URLSearchParams value. */
export function formEncode(text: string): string {
  return new URLSearchParams({ x: text }).toString().slice(2);
}

function base64Forms(text: string): Array<[string, string]> {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  const padded = btoa(binary);
  const url = padded.replaceAll("+", "-").replaceAll("/", "_");
  return [
    ["base64", padded],
    ["base64 unpadded", padded.replace(/=+$/, "")],
    ["base64url", url],
    ["base64url unpadded", url.replace(/=+$/, "")],
  ];
}
