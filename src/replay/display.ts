import type { Logger } from "../log.ts";
import { formatProgressLine, type Progress, progressFields } from "./progress.ts";

/** How a run by hand shows its progress on stderr. */
export interface DisplayOptions {
  /** stderr is a terminal: one line redrawn in place; otherwise a plain log line every `intervalMs`. */
  terminal: boolean;
  /** Colour on the terminal line (off with NO_COLOR). */
  colour: boolean;
  /** No progress at all (`--quiet`). */
  quiet: boolean;
  intervalMs: number;
  /** Writes text to stderr as it is. */
  write: (text: string) => void;
  /** The terminal's width in columns. */
  columns: () => number;
}

/** The progress display, and the way log lines get past it. */
export interface Display {
  /** Where the logger writes its lines: on a terminal they go above the progress line. */
  writeLog(line: string): void;
  /** Starts showing `progress()`; progress lines off a terminal go to `log`. */
  start(progress: () => Progress, log: Logger): void;
  /** Shows the final progress (on a terminal, left on screen) and stops. */
  finish(): void;
}

/** How often the terminal line is redrawn. */
const REDRAW_MS = 200;
const CLEAR_LINE = "\r\x1b[K";

/** Creates the display; it shows nothing until started. */
export function createDisplay(options: DisplayOptions): Display {
  let poll: (() => Progress) | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let line = "";
  const inPlace = options.terminal && !options.quiet;
  // A line one column short of the width: a full one would wrap on some terminals, breaking the redraw.
  const draw = () => {
    line = formatProgressLine(poll!(), {
      colour: options.colour,
      width: Math.max(20, options.columns() - 1),
    });
    options.write(CLEAR_LINE + line);
  };
  return {
    writeLog(text) {
      if (inPlace && timer !== undefined) options.write(`${CLEAR_LINE}${text}\n${line}`);
      else options.write(`${text}\n`);
    },
    start(progress, log) {
      poll = progress;
      if (options.quiet) return;
      if (inPlace) {
        draw();
        timer = setInterval(draw, REDRAW_MS);
      } else {
        timer = setInterval(() => log.info("Progress", progressFields(progress())), options.intervalMs);
      }
    },
    finish() {
      if (timer === undefined) return;
      clearInterval(timer);
      timer = undefined;
      if (inPlace) {
        draw();
        options.write("\n");
      }
    },
  };
}
