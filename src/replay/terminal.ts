/** What a run by hand learns of the terminal it runs in, and the progress display on stderr. */
import { writeStderrText } from "../log.ts";
import { createDisplay, type Display } from "./display.ts";

/** Colour on `stream` when it is a terminal, unless NO_COLOR is set (https://no-color.org: any non-empty value). */
export function colourOn(stream: { isTerminal(): boolean }, noColor: string | undefined): boolean {
  return stream.isTerminal() && !noColor;
}

/** The width of the terminal `stream` writes to; 80 when it is not a terminal. */
export function terminalColumns(stream: { isTerminal(): boolean }): number {
  if (!stream.isTerminal()) return 80;
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 80;
  }
}

/** The progress display of a run by hand on stderr (the service shows none). */
export function stderrDisplay(
  options: { quiet: boolean; progressIntervalMs: number },
  byHand: boolean,
  noColor: string | undefined,
): Display {
  return createDisplay({
    terminal: Deno.stderr.isTerminal(),
    colour: colourOn(Deno.stderr, noColor),
    quiet: options.quiet || !byHand,
    intervalMs: options.progressIntervalMs,
    write: writeStderrText,
    columns: () => terminalColumns(Deno.stderr),
  });
}
