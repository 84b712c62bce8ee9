/**
 * The layout's rules, read from the source: folders along a record's trip, imports that point one way,
 * config on top, files and functions of a readable size, one Deno.exit, and comments that point at files
 * that exist. Each failure names the files and lines to fix.
 */
const ROOT = new URL("../", import.meta.url).pathname;
const SELF = "src/layout_test.ts";

/** Folder of src/ → rank: a file imports only from its own folder or a lower rank ("" is src/ itself). */
const RANKS: Record<string, number> = {
  "": 0,
  security: 1,
  kafka: 2,
  delivery: 2,
  settle: 3,
  sink: 4,
  operations: 5,
  replay: 5,
  config: 6,
};
const MAIN_RANK = 7;
const MAX_FILE_LINES = 400;
const FILE_LINE_EXEMPT = ["src/config/options.ts"];
const MAX_MAIN_LINES = 160;
const MAX_FUNCTION_LINES = 100;

/** Paths relative to ROOT of every file under `dir`, sorted. */
function filesUnder(dir: string): string[] {
  const found: string[] = [];
  const walk = (relative: string) => {
    for (const entry of Deno.readDirSync(ROOT + relative)) {
      const path = `${relative}/${entry.name}`;
      if (entry.isDirectory) walk(path);
      else if (entry.isFile) found.push(path);
    }
  };
  walk(dir);
  return found.sort();
}

const read = (path: string): string => Deno.readTextFileSync(ROOT + path);
const isTest = (path: string): boolean => path.endsWith("_test.ts");
const SOURCES = ["main.ts", ...filesUnder("src").filter((p) => p.endsWith(".ts"))];
const CODE = SOURCES.filter((p) => !isTest(p));

const importCache = new Map<string, string[]>();

/** The files `path` imports or re-exports from, by relative specifier, as paths relative to ROOT. */
function importsOf(path: string): string[] {
  const cached = importCache.get(path);
  if (cached) return cached;
  const text = read(path);
  const patterns = [
    /^\s*(?:import|export)\b[^;"'`]*?\bfrom\s*["'](\.\.?\/[^"']+)["']/gm,
    /^\s*import\s*["'](\.\.?\/[^"']+)["']/gm,
    /\bimport\(\s*["'](\.\.?\/[^"']+)["']\s*\)/g,
  ];
  const base = new URL(path, `file://${ROOT}`);
  const imports = patterns.flatMap((re) =>
    [...text.matchAll(re)].map((m) => new URL(m[1]!, base).pathname.slice(ROOT.length))
  );
  importCache.set(path, imports);
  return imports;
}

/** The folder of src/ a file is in ("" for src/ itself), or undefined outside src/. */
function folderOf(path: string): string | undefined {
  const parts = path.split("/");
  if (parts[0] !== "src") return undefined;
  return parts.length === 2 ? "" : parts[1];
}

function rankOf(path: string): number | undefined {
  if (path === "main.ts") return MAIN_RANK;
  const folder = folderOf(path);
  return folder === undefined ? undefined : RANKS[folder];
}

/** One cycle of the import graph over `files`, as the files along it, or undefined. */
function findCycle(files: string[]): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string): string[] | undefined => {
    if (state.get(file) === "done") return undefined;
    if (state.get(file) === "open") return [...stack.slice(stack.indexOf(file)), file];
    state.set(file, "open");
    stack.push(file);
    for (const next of importsOf(file).filter((f) => files.includes(f))) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(file, "done");
    return undefined;
  };
  for (const file of files) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return undefined;
}

/** Top-level functions (declarations, and `const x = (…) =>`) at column 0 with their length in lines. */
function topLevelFunctions(text: string): Array<{ name: string; line: number; lines: number }> {
  const lines = text.split("\n");
  const declaration = /^(?:export\s+)?(?:default\s+)?(?:async\s+)?function\*?\s*(\w+)/;
  const arrow = /^(?:export\s+)?const\s+(\w+)\s*=\s*(?:async\s*)?\(/;
  const found: Array<{ name: string; line: number; lines: number }> = [];
  lines.forEach((first, index) => {
    const match = declaration.exec(first) ?? arrow.exec(first);
    if (!match) return;
    let end = index;
    for (let i = index + 1; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.startsWith("}")) end = i;
      if (line.startsWith("}") || /^[A-Za-z@/]/.test(line)) break;
    }
    found.push({ name: match[1]!, line: index + 1, lines: end - index + 1 });
  });
  return found;
}

/** The text of a file's comments (block and line comments; a `//` in a string counts too). */
const commentsOf = (text: string): string => (text.match(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g) ?? []).join("\n");

/** Lines of `text` matching `pattern`, as `path:line: text`. */
function linesMatching(path: string, text: string, pattern: RegExp): string[] {
  return text.split("\n").flatMap((line, i) =>
    pattern.test(line) ? [`${path}:${i + 1}: ${line.trim()}`] : []
  );
}

function exists(path: string): boolean {
  try {
    Deno.statSync(ROOT + path);
    return true;
  } catch {
    return false;
  }
}

function assertNone(found: string[], what: string): void {
  if (found.length > 0) throw new Error(`${what} (${found.length}):\n  ${found.join("\n  ")}`);
}

Deno.test("layout: no circles in the import graph of src/", () => {
  const cycle = findCycle(CODE.filter((p) => p.startsWith("src/")));
  assertNone(cycle ? [cycle.join(" → ")] : [], "an import cycle");
});

Deno.test("layout: imports point one way (own folder or a lower rank)", () => {
  const violations = CODE.flatMap((from) =>
    importsOf(from).flatMap((to) => {
      const [a, b] = [rankOf(from), rankOf(to)];
      if (a === undefined || b === undefined) return [`${from} → ${to} (a folder without a rank)`];
      const sameFolder = from !== "main.ts" && folderOf(from) === folderOf(to);
      return sameFolder || b < a ? [] : [`${from} → ${to}`];
    })
  );
  assertNone(violations, "imports against the ranks");
});

Deno.test("layout: config on top: only src/config/ and main.ts import from src/config/", () => {
  const violations = CODE.filter((p) => p !== "main.ts" && folderOf(p) !== "config").flatMap((from) =>
    importsOf(from).filter((to) => folderOf(to) === "config").map((to) => `${from} → ${to}`)
  );
  assertNone(violations, "imports of src/config/ from below");
});

Deno.test("layout: files and top-level functions of a readable size", () => {
  const tooLong = CODE.flatMap((path) => {
    const count = read(path).trimEnd().split("\n").length;
    const limit = path === "main.ts" ? MAX_MAIN_LINES : MAX_FILE_LINES;
    return count > limit && !FILE_LINE_EXEMPT.includes(path) ? [`${path}: ${count} lines (> ${limit})`] : [];
  });
  const longFunctions = CODE.flatMap((path) =>
    topLevelFunctions(read(path)).filter((f) => f.lines > MAX_FUNCTION_LINES)
      .map((f) => `${path}:${f.line}: ${f.name}, ${f.lines} lines (> ${MAX_FUNCTION_LINES})`)
  );
  assertNone([...tooLong, ...longFunctions], "files or functions too long");
});

Deno.test("layout: one exit: Deno.exit( in main.ts and nowhere in src/", () => {
  const inSrc = CODE.filter((p) => p !== "main.ts").flatMap((p) => linesMatching(p, read(p), /Deno\.exit\(/));
  assertNone(
    [...inSrc, ...(read("main.ts").includes("Deno.exit(") ? [] : ["main.ts has none"])],
    "Deno.exit(",
  );
});

Deno.test("layout: no file names with _unit_ in src/ or tests/", () => {
  assertNone(
    [...filesUnder("src"), ...filesUnder("tests")].filter((p) => p.includes("_unit_")),
    "_unit_ names",
  );
});

Deno.test("layout: comments point at documents and files that exist", () => {
  const code = [...SOURCES, ...filesUnder("tests"), ...filesUnder("bench")]
    .filter((p) => p.endsWith(".ts") && p !== SELF);
  const gone = code.flatMap((p) =>
    linesMatching(p, read(p), /\b(?:RE)?DESIGN\.md|\bSTYLE\.md|\.\.\/shared\b/)
  );
  const docs = ["README.md", "eventsink.permissions", "Makefile", ...filesUnder("bench")];
  const mentions = [
    ...code.map((p) => ({ path: p, text: commentsOf(read(p)) })),
    ...docs.filter((p) => !p.endsWith(".ts")).map((p) => ({ path: p, text: read(p) })),
  ];
  const missing = mentions.flatMap(({ path, text }) =>
    [...new Set(text.match(/(?<![\w-])src\/[a-z_/]+\.ts/g) ?? [])].filter((m) => !exists(m))
      .map((m) => `${path}: ${m}`)
  );
  assertNone([...gone, ...missing], "pointers at documents or files that do not exist");
});
