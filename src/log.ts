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
}

/** Creates a logger writing text or JSON lines. */
export function createLogger(options: LoggerOptions, base: LogFields = {}): Logger {
  const write = options.write ?? writeStderr;
  const now = options.now ?? (() => new Date());
  const threshold = LOG_LEVELS.indexOf(options.level);
  const emit = (level: LogLevel, message: string, fields: LogFields = {}) => {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    const all = { ...base, ...fields };
    write(
      options.format === "json"
        ? JSON.stringify({ time: now().toISOString(), level, msg: message, ...all })
        : formatText(now(), level, message, all),
    );
  };
  return {
    debug: (message, fields) => emit("debug", message, fields),
    info: (message, fields) => emit("info", message, fields),
    warn: (message, fields) => emit("warn", message, fields),
    error: (message, fields) => emit("error", message, fields),
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

function formatText(time: Date, level: LogLevel, message: string, fields: LogFields): string {
  const pairs = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${quoteIfNeeded(String(value))}`);
  return [time.toISOString(), level.toUpperCase().padEnd(5), message, ...pairs].join(" ");
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
