import { fstatSync } from "node:fs";
import { type Present, presenter } from "./outward.ts";

/** Log levels, least severe first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Structured context of a log line. Record values never go here: topic/partition/offset/key only. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** A levelled logger; `child` adds fields to every line it writes. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where finished lines go; stderr by default so that stdout stays free for reports. */
  write?: (line: string) => void;
  now?: () => Date;
  /**
   * Masks secrets in, neutralises and cuts the message and every text field (see outward.ts); by default
   * neutralises and cuts only.
   */
  present?: Present;
  /**
   * Stderr is the journal: each line starts with its syslog priority (`<3>` … `<7>`), which journald takes
   * off and keeps as the entry's priority; text lines carry no time, journald records it.
   */
  journal?: boolean;
}

/** syslog priorities (sd-daemon(3)) of our levels: debug 7, info 6, warning 4, error 3. */
export const JOURNAL_PRIORITIES: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

/** Creates a logger writing text or JSON lines. */
export function createLogger(options: LoggerOptions, base: LogFields = {}): Logger {
  const write = options.write ?? writeStderr;
  const now = options.now ?? (() => new Date());
  const threshold = LOG_LEVELS.indexOf(options.level);
  const present = options.present ?? presenter();
  const emit = (level: LogLevel, text: string, fields: LogFields = {}) => {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    const message = present(text);
    const all = Object.fromEntries(
      Object.entries({ ...base, ...fields }).map(([key, value]) => [
        key,
        typeof value === "string" ? present(value) : value,
      ]),
    );
    const line = options.format === "json"
      ? JSON.stringify({ time: now().toISOString(), level, msg: message, ...all })
      : formatText(options.journal ? undefined : now(), level, message, all);
    write(options.journal ? `<${JOURNAL_PRIORITIES[level]}>${line}` : line);
  };
  return {
    debug: (message, fields) => emit("debug", message, fields),
    info: (message, fields) => emit("info", message, fields),
    warn: (message, fields) => emit("warn", message, fields),
    error: (message, fields) => emit("error", message, fields),
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

/**
 * A child logger made on its first line, with `fields()` only then: deliveries make one per record, and
 * few records log anything (making each child up front was garbage at thousands of records a second).
 */
export function lazyChild(parent: Logger, fields: () => LogFields): Logger {
  return new LazyChild(parent, fields);
}

class LazyChild implements Logger {
  #parent: Logger;
  #fields: () => LogFields;
  #child: Logger | undefined;

  constructor(parent: Logger, fields: () => LogFields) {
    this.#parent = parent;
    this.#fields = fields;
  }

  #made(): Logger {
    return this.#child ??= this.#parent.child(this.#fields());
  }

  debug(message: string, fields?: LogFields): void {
    this.#made().debug(message, fields);
  }

  info(message: string, fields?: LogFields): void {
    this.#made().info(message, fields);
  }

  warn(message: string, fields?: LogFields): void {
    this.#made().warn(message, fields);
  }

  error(message: string, fields?: LogFields): void {
    this.#made().error(message, fields);
  }

  child(fields: LogFields): Logger {
    return this.#made().child(fields);
  }
}

function formatText(time: Date | undefined, level: LogLevel, message: string, fields: LogFields): string {
  const pairs = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${quoteIfNeeded(String(value))}`);
  const head = [level.toUpperCase().padEnd(5), message];
  return [...(time ? [time.toISOString()] : []), ...head, ...pairs].join(" ");
}

function quoteIfNeeded(value: string): string {
  return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  writeStderrText(line + "\n");
}

/** Writes text to stderr whole (also a progress display, which shares the stream with log lines). */
export function writeStderrText(text: string): void {
  const bytes = encoder.encode(text);
  // writeSync may write part of the buffer to a pipe; loop so that lines never interleave or truncate.
  for (let written = 0; written < bytes.length;) {
    written += Deno.stderr.writeSync(bytes.subarray(written));
  }
}

/**
 * Whether stderr is connected to the journal: systemd sets JOURNAL_STREAM to `<device>:<inode>` of the
 * stream it gives a service, and only a match counts (a child whose stderr was redirected inherits it).
 */
export function stderrIsJournal(journalStream: string | undefined): boolean {
  if (journalStream === undefined) return false;
  const stat = fstatSync(2);
  return journalStream === `${stat.dev}:${stat.ino}`;
}
