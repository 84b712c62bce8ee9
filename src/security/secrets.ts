/**
 * Secrets: where each may come from (never the command line, where `ps` and shell history would show
 * it), reading it, and keeping it out of every line eventsink prints.
 */

import { REDACTED } from "../outward.ts";

/** A secret value: its text is reached only through `reveal()`; printing, logging or JSON shows "[redacted]". */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The secret text, for the one place that sends it. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.for("Deno.customInspect")](): string {
    return REDACTED;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return REDACTED;
  }
}

/** The ways one secret can be given. */
export interface SecretSpec {
  /** For messages: "the OAuth2 client secret". */
  what: string;
  /** Environment variables holding the value itself, ours first, then the original service's. */
  env: readonly string[];
  /** The flag (and, upper-cased, the environment variable) naming a file that holds the value. */
  fileOption: string;
  /** Its name as a systemd credential: `LoadCredential=<name>:…` puts it in `$CREDENTIALS_DIRECTORY/<name>`. */
  credential: string;
}

/** Where a secret comes from, as decided from the command line and the environment. */
export type SecretSource =
  | { from: "env"; name: string; secret: Secret }
  | { from: "file"; path: string }
  | { from: "credential"; path: string };

/** The environment variable systemd sets for a service with credentials. */
export const CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY";

/**
 * Picks a secret's source: the file option when given, else the environment variable, else the systemd
 * credential of its name (whether that file exists is only known when it is read). Pure.
 */
export function secretSource(
  spec: SecretSpec,
  file: string | undefined,
  env: (name: string) => string | undefined,
): SecretSource | undefined {
  if (file !== undefined) return { from: "file", path: file };
  const name = spec.env.find((candidate) => env(candidate) !== undefined);
  if (name !== undefined) return { from: "env", name, secret: new Secret(env(name)!) };
  const directory = env(CREDENTIALS_DIRECTORY);
  if (directory) return { from: "credential", path: `${directory.replace(/\/+$/, "")}/${spec.credential}` };
  return undefined;
}

/** Says where a secret comes from, never what it is: for the start-up configuration dump. */
export function describeSecretSource(source: SecretSource | undefined): string | undefined {
  if (source === undefined) return undefined;
  switch (source.from) {
    case "env":
      return `${REDACTED} (env ${source.name})`;
    case "file":
      return `${REDACTED} (file ${source.path})`;
    case "credential":
      return `${REDACTED} (systemd credential ${source.path})`;
  }
}

/** Why a secret could not be read; the message names the source, never the content. */
export class SecretError extends Error {
  override name = "SecretError";
}

/**
 * Reads a secret from its source. A file's one trailing line break is dropped (as `echo` writes it).
 * A systemd credential that does not exist is `undefined` unless `required`; anything else missing,
 * unreadable or empty throws a {@link SecretError}.
 */
export async function readSecret(
  spec: SecretSpec,
  source: SecretSource,
  options: { required: boolean; readTextFile: (path: string) => Promise<string> },
): Promise<Secret | undefined> {
  if (source.from === "env") {
    if (source.secret.reveal() === "") throw new SecretError(`${spec.what} in ${source.name} is empty`);
    return source.secret;
  }
  const where = source.from === "file"
    ? `file ${source.path} (--${spec.fileOption})`
    : `systemd credential ${source.path}`;
  let text: string;
  try {
    text = await options.readTextFile(source.path);
  } catch (error) {
    if (source.from === "credential" && !options.required && error instanceof Deno.errors.NotFound) {
      return undefined;
    }
    const hint = source.from === "credential"
      ? `; set ${spec.env[0]}, --${spec.fileOption}, or LoadCredential=${spec.credential}:…`
      : "";
    throw new SecretError(`Cannot read ${spec.what} from ${where}: ${fileErrorReason(error)}${hint}`);
  }
  const value = text.replace(/\r?\n$/, "");
  if (value === "") throw new SecretError(`${spec.what} in ${where} is empty`);
  return new Secret(value);
}

/** Largest file eventsink reads at start-up: a full CA bundle is about 220 KB, a secret far less. */
export const MAX_STARTUP_FILE_BYTES = 1024 * 1024;

/**
 * Reads a start-up file (a secret, a certificate, a key) as text: only a regular file of at most 1 MiB, so
 * that a wrong path to a device or a FIFO fails at once instead of filling memory or hanging.
 */
export async function readStartupFile(path: string): Promise<string> {
  const info = await Deno.stat(path);
  if (info.isDirectory) throw new Deno.errors.IsADirectory();
  if (!info.isFile) throw new Error("it is not a regular file (a device, FIFO or socket is refused)");
  if (info.size > MAX_STARTUP_FILE_BYTES) {
    throw new Error(`it is larger than 1 MiB (${info.size} bytes), the most eventsink reads`);
  }
  return await Deno.readTextFile(path);
}

/** A file error's reason without the path Deno repeats in its message. */
export function fileErrorReason(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "it is a directory";
  if (error instanceof Deno.errors.NotCapable) return "eventsink is not allowed to read files (--allow-read)";
  return error instanceof Error ? error.message.replace(/, (open|read) '.*'$/, "") : String(error);
}
