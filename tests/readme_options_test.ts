/** The README's configuration table is the one generated from the option table (src/config/reference.ts). */
import assert from "node:assert/strict";
import { optionsTable } from "../src/config/reference.ts";

const BEGIN = "<!-- options:begin -->";
const END = "<!-- options:end -->";

/** A markdown table as its rows of trimmed cells: the same whether `deno fmt` padded its columns or not. */
function tableCells(table: string): string[][] {
  return table.trim().split("\n").map((line) =>
    line.trim().replace(/^\|/, "").replace(/(?<!\\)\|$/, "").split(/(?<!\\)\|/)
      .map((cell) => cell.trim()).map((cell) => /^:?-+:?$/.test(cell) ? "---" : cell)
  );
}

Deno.test("readme: the options table is the generated one", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const from = readme.indexOf(BEGIN);
  const to = readme.indexOf(END, from);
  assert.ok(
    from >= 0 && to >= 0,
    `README.md has no ${BEGIN} … ${END} section: put the output of \`deno task options-table\` between them`,
  );
  assert.deepEqual(
    tableCells(readme.slice(from + BEGIN.length, to)),
    tableCells(optionsTable()),
    "README.md's options table is out of date: replace it with the output of `deno task options-table`",
  );
});
