/** The README is the operator's manual: short, and every link in it (and in docs/) leads somewhere. */
import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const README = "README.md";
const MAX_LINES = 650;
const MAX_PROSE_LINE = 200;

/** The lines of a Markdown file that are prose: not in a fenced code block, not a table row. */
function proseLines(text: string): Array<{ line: string; number: number }> {
  let fenced = false;
  return text.split("\n").flatMap((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return [];
    }
    if (fenced || /^\s*\|/.test(line)) return [];
    return [{ line, number: i + 1 }];
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens; repeats get -1, -2, … */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { line } of proseLines(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading === null) continue;
    const slug = heading[1]!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** Every inline link target in the prose and tables of a Markdown file (inline code left out). */
function linksOf(text: string): Array<{ target: string; number: number }> {
  let fenced = false;
  return text.split("\n").flatMap((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return [];
    }
    if (fenced) return [];
    const outsideCode = line.replace(/`[^`]*`/g, "``");
    return [...outsideCode.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => ({ target: m[1]!, number: i + 1 }));
  });
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** What is wrong with the links of one Markdown file (a path relative to the repository). */
async function brokenLinks(file: string): Promise<string[]> {
  const text = await Deno.readTextFile(join(ROOT, file));
  const problems: string[] = [];
  for (const { target, number } of linksOf(text)) {
    if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:: not ours to check
    const [path, anchor] = target.split("#", 2) as [string, string | undefined];
    const resolved = path === "" ? join(ROOT, file) : join(ROOT, dirname(file), path);
    const where = `${file}:${number}: ${target}`;
    if (!resolved.startsWith(ROOT) || !(await exists(resolved))) {
      problems.push(`${where}: no such file in the repository`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!resolved.endsWith(".md")) {
      problems.push(`${where}: an anchor into a file that is not Markdown`);
    } else if (!anchorsOf(await Deno.readTextFile(resolved)).has(anchor)) {
      problems.push(`${where}: ${relative(ROOT, resolved)} has no heading #${anchor}`);
    }
  }
  return problems;
}

async function markdownFiles(): Promise<string[]> {
  const docs: string[] = [];
  for await (const entry of Deno.readDir(join(ROOT, "docs"))) {
    if (entry.isFile && entry.name.endsWith(".md")) docs.push(`docs/${entry.name}`);
  }
  return [README, ...docs.sort()];
}

Deno.test("readme: the README is at most 650 lines", async () => {
  const lines = (await Deno.readTextFile(join(ROOT, README))).trimEnd().split("\n").length;
  assert.ok(lines <= MAX_LINES, `README.md has ${lines} lines; move detail to docs/`);
});

Deno.test("readme: every link of the README and docs/ leads to a file and a heading that exist", async () => {
  const problems = (await Promise.all((await markdownFiles()).map(brokenLinks))).flat();
  assert.deepEqual(problems, []);
});

Deno.test("readme: no prose line (outside code blocks and tables) is over 200 characters", async () => {
  const text = await Deno.readTextFile(join(ROOT, README));
  const long = proseLines(text).filter(({ line }) => line.length > MAX_PROSE_LINE)
    .map(({ line, number }) => `README.md:${number}: ${line.length} characters`);
  assert.deepEqual(long, []);
});

Deno.test("readme: a table's separator row comes only right after its header", async () => {
  const stray = (await Promise.all((await markdownFiles()).map(async (file) => {
    const lines = (await Deno.readTextFile(join(ROOT, file))).split("\n");
    const isRow = (i: number) => i >= 0 && /^\s*\|/.test(lines[i] ?? "");
    return lines.flatMap((line, i) =>
      /^\s*\|(\s*:?-{3,}:?\s*\|)+\s*$/.test(line) && !(isRow(i - 1) && !isRow(i - 2))
        ? [`${file}:${i + 1}: a separator row inside a table`]
        : []
    );
  }))).flat();
  assert.deepEqual(stray, []);
});

Deno.test("readme: the options table sits between the markers that its generator replaces", async () => {
  const text = await Deno.readTextFile(join(ROOT, README));
  const begin = text.indexOf("<!-- options:begin -->");
  const end = text.indexOf("<!-- options:end -->");
  assert.ok(begin >= 0 && end > begin, "markers <!-- options:begin --> … <!-- options:end --> missing");
  assert.match(text.slice(begin, end), /\n\| `--eventstore-url/);
});
