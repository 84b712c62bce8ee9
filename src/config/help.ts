/** The `--help` text, generated from the option table so that it cannot drift from the parser. Pure. */
import { CREDENTIALS_DIRECTORY } from "../security/secrets.ts";
import { OPTIONS, type OptionSpec } from "./options.ts";

/** Help is wrapped to the terminal, but no wider than this (long lines are hard to read) nor narrower. */
const MAX_WIDTH = 100;
const MIN_WIDTH = 50;
/** Where an entry's text starts, under its name. */
const TEXT_INDENT = "      ";

/**
 * `text` as lines of at most `width` columns, broken at spaces: the first line starts with `first`,
 * the others with `rest`. A word longer than a line stays whole.
 */
export function wrap(text: string, width: number, first: string, rest = first): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of text.split(" ").filter((w) => w !== "")) {
    if (!empty && line.length + 1 + word.length > width) {
      lines.push(line);
      line = rest;
      empty = true;
    }
    line += empty ? word : ` ${word}`;
    empty = false;
  }
  lines.push(line);
  return lines;
}

/** An entry of the help: its name on a line, then its lines (see `under`). */
function entry(name: string, width: number, lines: string[]): string[] {
  return [...wrap(name, width, "  ", `  ${TEXT_INDENT}`), ...lines];
}

/** `text` wrapped under an entry's name; its lines after the first indented by `hanging` more. */
function under(text: string, width: number, hanging = ""): string[] {
  return wrap(text, width, TEXT_INDENT, TEXT_INDENT + hanging);
}

function optionEntry(option: OptionSpec, width: number): string[] {
  const value = option.value === undefined ? "" : ` <${option.value}>`;
  const fallback = option.default === undefined ? "" : ` (default: ${option.default})`;
  const secret = option.secret === undefined ? [] : under(
    `or the secret itself in env ${option.secret.env.join(", ")}, or the systemd credential ` +
      option.secret.credential,
    width,
  );
  return entry(`--${option.flag}${value}`, width, [
    ...under(option.help, width),
    ...under(`env: ${option.env.join(", ")}${fallback}`, width, "     "),
    ...secret,
  ]);
}

/** The help, wrapped to `columns` (kept within 50 to 100). */
export function helpText(columns: number): string {
  const width = Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, columns));
  const paragraph = (text: string) => wrap(text, width, "");
  return [
    ...paragraph("eventsink — forwards FHIR messages from a Kafka topic to the FHIR EventStore."),
    "",
    "Usage:",
    ...entry("eventsink [options]", width, under("Forward until stopped (SIGTERM, SIGINT).", width)),
    ...entry(
      "eventsink check [options]",
      width,
      under(
        "Check both ends with the same options: brokers, topic, consumer group and lag, EventStore; " +
          "exit 0 when all pass, 1 otherwise.",
        width,
      ),
    ),
    ...entry("eventsink help", width, under("Show this help (as --help).", width)),
    "",
    ...paragraph("Every option can also be set by the environment variable named below it (a flag wins)."),
    "",
    "Options:",
    ...(OPTIONS as readonly OptionSpec[]).flatMap((option) => optionEntry(option, width)),
    ...entry("-h, --help", width, under("Show this help and exit.", width)),
    ...entry(
      "-V, --version",
      width,
      under("Show the versions of eventsink, Deno, V8, TypeScript and KafkaJS, and exit.", width),
    ),
    "",
    ...paragraph(
      "Secrets are never taken as flags. Each comes from a file (its --…-file option), from its environment " +
        `variable, or from the systemd credential of its name in $${CREDENTIALS_DIRECTORY}, in that order.`,
    ),
    "",
    ...paragraph(
      "Exit codes: 0 stopped cleanly (a run by hand: everything delivered; check: all passed), 1 runtime " +
        "failure (a run by hand stopped before its end; check: a check failed), 2 usage or configuration " +
        "error, 3 a run by hand in which some records were dead-lettered, skipped or deleted by Kafka before " +
        "delivery.",
    ),
  ].join("\n");
}
