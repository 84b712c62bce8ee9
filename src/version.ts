import kafkajsPackage from "kafkajs/package.json" with { type: "json" };
import { BUILD_DESCRIBE } from "./build_stamp.ts";

/** The version this source is on its way to; a build adds what `git describe` says (see Makefile). */
const BASE_VERSION = "0.1.0";

/**
 * The version a build reports, in semver: a release tag's own (`v0.2.0` → `0.2.0`); commits after it or
 * uncommitted changes as build metadata (`v0.2.0-3-gabc1234-dirty` → `0.2.0+3-gabc1234-dirty`), so that only
 * the tagged commit itself says exactly `0.2.0`; without a release tag, the base version with the commit
 * (`0.1.0+abc1234-dirty`); run from source, `0.1.0-dev`.
 */
export function releaseVersion(base: string, describe: string | undefined): string {
  if (describe === undefined) return `${base}-dev`;
  const tagged = /^v(\d+\.\d+\.\d+)((?:-\d+-g[0-9a-f]+)?(?:-dirty)?)$/.exec(describe);
  if (!tagged) return `${base}+${describe}`;
  return tagged[2] ? `${tagged[1]}+${tagged[2].slice(1)}` : tagged[1]!;
}

/** eventsink's version. */
export const VERSION = releaseVersion(BASE_VERSION, BUILD_DESCRIBE);

/** eventsink's version and those of what it runs on: --version, the start line, eventsink_build_info. */
export interface Versions {
  eventsink: string;
  deno: string;
  v8: string;
  typescript: string;
  kafkajs: string;
}

export const VERSIONS: Versions = {
  eventsink: VERSION,
  deno: Deno.version.deno,
  v8: Deno.version.v8,
  typescript: Deno.version.typescript,
  kafkajs: kafkajsPackage.version,
};

/** The `--version` text: eventsink's version first, then one line per component. */
export function versionText(versions: Versions): string {
  const { eventsink, ...components } = versions;
  return [`eventsink ${eventsink}`, ...Object.entries(components).map(([name, v]) => `${name} ${v}`)].join(
    "\n",
  );
}

/** The `User-Agent` sent to the EventStore, so its access log names the sender and its version. */
export const USER_AGENT = `eventsink/${VERSION} (Deno ${Deno.version.deno})`;
