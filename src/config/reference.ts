/**
 * The README's configuration table, generated from the option table like `--help`: `deno task
 * options-table` prints it, and tests/readme_options_test.ts checks that the README holds it. Pure.
 */
import { OPTIONS, type OptionSpec } from "./options.ts";

/** Text in a table cell: a `|` would end the cell, and `<name>` would be read as an HTML tag. */
function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll("*", "\\*");
}

/** Code in a table cell: only a `|` needs escaping there. */
function code(text: string): string {
  return `\`${text.replaceAll("|", "\\|")}\``;
}

/** `OURS` (`ALIAS`, …): our variable, then the original service's names. */
function variables(names: readonly string[]): string {
  const [ours, ...aliases] = names.map(code);
  return aliases.length === 0 ? ours! : `${ours} (${aliases.join(", ")})`;
}

function row(option: OptionSpec): string {
  const flag = code(`--${option.flag}${option.value === undefined ? "" : ` <${option.value}>`}`);
  const secret = option.secret === undefined
    ? ""
    : `; the secret itself: ${variables(option.secret.env)}, or credential ${code(option.secret.credential)}`;
  const fallback = option.default !== undefined ? code(option.default) : option.boolean ? "off" : "";
  return `| ${flag} | ${variables(option.env)}${secret} | ${fallback} | ${cell(option.help)} |`;
}

/** Every option as a markdown table: flag, environment variables (aliases), default, meaning. */
export function optionsTable(): string {
  return [
    "| flag | environment (alias) | default | meaning |",
    "| --- | --- | --- | --- |",
    ...(OPTIONS as readonly OptionSpec[]).map(row),
  ].join("\n");
}

if (import.meta.main) console.log(optionsTable());
