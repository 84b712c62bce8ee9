/**
 * The benchmark's FHIR messages: the test fixtures with fresh ids (tests/support), as they are (about
 * 1.3–1.9 KB) or padded to 10 KB with a narrative, which keeps them valid messages.
 */
import { type FhirBundle, loadFixtures, withNewIds } from "../tests/support/fhir_variants.ts";
import { type Message, message } from "../tests/support/pipeline.ts";

/** Record sizes the benchmark runs: the fixtures as they are, or padded to 10 KB. */
export type SizeClass = "fixtures" | "10k";
export const SIZE_CLASSES: readonly SizeClass[] = ["fixtures", "10k"];

const PADDED_BYTES = 10 * 1024;
const XHTML = "http://www.w3.org/1999/xhtml";
const WORDS = "Pasienten melder bedring etter behandling og ønsker ny time hos fastlegen innen to uker. ";

/** A source of distinct valid messages of one size class. */
export type MessageMaker = () => Message;

/** Makes distinct messages of `size` from the fixtures in turn. */
export async function messageMaker(size: SizeClass): Promise<MessageMaker> {
  const fixtures = (await loadFixtures()).map((fixture) => fixture.bundle);
  const templates = size === "fixtures" ? fixtures : fixtures.map(padded);
  let next = 0;
  return () => message(withNewIds(templates[next++ % templates.length]!));
}

/**
 * A copy whose second entry carries a narrative (Resource.text) that brings the serialised message to
 * about 10 KB; fresh ids later leave the size as it is (UUIDs have one length).
 */
function padded(bundle: FhirBundle): FhirBundle {
  const copy = structuredClone(bundle);
  const resource = copy.entry?.[1]?.resource;
  if (!resource) throw new TypeError("a fixture has no second entry to carry the padding");
  resource.text = { status: "generated", div: "" };
  const missing = PADDED_BYTES - message(copy).bytes.length - `<div xmlns="${XHTML}"></div>`.length;
  const text = WORDS.repeat(Math.ceil(Math.max(0, missing) / WORDS.length) + 1);
  // Cut by bytes, not characters: the words hold two-byte letters.
  let div = text.slice(0, Math.max(0, missing));
  while (new TextEncoder().encode(div).length > missing) div = div.slice(0, -1);
  resource.text = { status: "generated", div: `<div xmlns="${XHTML}">${div.trimEnd()}</div>` };
  return copy;
}
