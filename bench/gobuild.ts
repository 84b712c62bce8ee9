/**
 * The bench's Go programs (bench/benthos/, bench/leanstore/): each built once into .cache/<name>/ and built
 * again when its sources change; without Go they are skipped, and the bench says why.
 */
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
/** Where `go` is looked for when it is not on PATH: the usual place of an install from go.dev. */
const GO_FALLBACK = "/usr/local/go/bin/go";

/** A Go program of the bench: its sources in bench/<name>/, its binary in .cache/<name>/<name>. */
export interface GoProgram {
  name: string;
  /** The files whose digest decides whether to build again (go.mod, go.sum, main.go). */
  sources: string[];
  /** Said before a build, after "<name>: building from bench/<name>/ with <go>". */
  buildNote: string;
}

/** The binary, ready (and whether it was built just now), or why there is none. */
export type GoBuild = { kind: "ready"; binary: string; built: boolean } | { kind: "skipped"; reason: string };

/** The path of a program's binary (whether or not it is built). */
export function binaryOf(name: string): string {
  return `${ROOT}.cache/${name}/${name}`;
}

/** Builds the binary unless it is there and made from the current sources; `say` gets progress lines. */
export async function ensureGoProgram(
  program: GoProgram,
  say: (line: string) => void,
  signal: AbortSignal,
): Promise<GoBuild> {
  const sourceDir = `${ROOT}bench/${program.name}`;
  const binary = binaryOf(program.name);
  const stampPath = `${ROOT}.cache/${program.name}/sources.sha256`;
  const digest = await sourceDigest(sourceDir, program.sources);
  const stamp = await Deno.readTextFile(stampPath).catch(() => "");
  if (stamp.trim() === digest && (await exists(binary))) return { kind: "ready", binary, built: false };
  const go = await findGo();
  if (go === undefined) return { kind: "skipped", reason: "Go is not installed" };
  say(`${program.name}: building from bench/${program.name}/ with ${go} (${program.buildNote})`);
  await Deno.mkdir(`${ROOT}.cache/${program.name}`, { recursive: true });
  const began = Date.now();
  const out = await new Deno.Command(go, {
    args: ["build", "-trimpath", "-buildvcs=false", "-o", `${binary}.new`, "."],
    cwd: sourceDir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal,
  }).output();
  signal.throwIfAborted();
  if (!out.success) {
    const error = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ");
    return { kind: "skipped", reason: `go build failed: ${error}` };
  }
  await Deno.rename(`${binary}.new`, binary);
  await Deno.writeTextFile(stampPath, `${digest}\n`);
  say(`${program.name}: built in ${((Date.now() - began) / 1000).toFixed(0)} s`);
  return { kind: "ready", binary, built: true };
}

async function sourceDigest(dir: string, sources: string[]): Promise<string> {
  const parts = await Promise.all(sources.map((name) => Deno.readFile(`${dir}/${name}`)));
  const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length + 1, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length + 1; // a zero between the files
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...hash].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** `go` on PATH, else at {@link GO_FALLBACK}, if either runs. */
async function findGo(): Promise<string | undefined> {
  for (const go of ["go", GO_FALLBACK]) {
    try {
      const out = await new Deno.Command(go, { args: ["version"], stdout: "null", stderr: "null" }).output();
      if (out.success) return go;
    } catch {
      // not there
    }
  }
  return undefined;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}
