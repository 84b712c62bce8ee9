/**
 * Valid and invalid FHIR message Bundles derived from the real messages in tests/fixtures/fhir-messages,
 * for the EventStore stand-in's tests, eventsink's tests and the demo.
 * Each fixture is accepted (202) by the real hops-eventstore as it is (see the fixtures' NOTICE.md). Use
 * {@link withNewIds} for messages that must be stored anew in a store that has seen them.
 */

const FIXTURE_DIR = new URL("../fixtures/fhir-messages/", import.meta.url);
const UUID_ANYWHERE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const DAY_MS = 24 * 60 * 60 * 1000;

/** A FHIR resource as JSON; loose so that invalid variants can be expressed. */
export interface FhirResource {
  resourceType: string;
  id?: string;
  [element: string]: unknown;
}

/** A Bundle entry. */
export interface FhirBundleEntry {
  fullUrl?: string;
  resource?: FhirResource;
  [element: string]: unknown;
}

/** A FHIR Bundle as JSON; loose so that invalid variants can be expressed. */
export interface FhirBundle extends FhirResource {
  type?: string;
  timestamp?: string;
  entry?: FhirBundleEntry[];
}

/** A fixture message: its file name without .json, the file's exact bytes and its parsed Bundle. */
export interface Fixture {
  name: string;
  bytes: Uint8Array<ArrayBuffer>;
  bundle: FhirBundle;
}

/** A message that breaks exactly one rule of the real EventStore, and the status it answers (see tests/contract_test.ts). */
export interface InvalidVariant {
  name: string;
  status: 400 | 422;
  bundle: FhirBundle;
}

interface Mutation {
  name: string;
  status: 400 | 422;
  mutate: (bundle: FhirBundle) => void;
}

const INVALID_MUTATIONS: readonly Mutation[] = [
  {
    name: "wrong-type",
    status: 422,
    mutate: (bundle) => {
      bundle.type = "collection";
    },
  },
  {
    name: "missing-type",
    status: 422,
    mutate: (bundle) => {
      delete bundle.type;
    },
  },
  {
    name: "missing-bundle-id",
    status: 422,
    mutate: (bundle) => {
      delete bundle.id;
    },
  },
  {
    name: "non-uuid-bundle-id",
    status: 422,
    mutate: (bundle) => {
      bundle.id = "message-bundle-1";
    },
  },
  {
    name: "same-ids",
    status: 422,
    mutate: (bundle) => {
      bundle.id = messageIdOf(bundle);
    },
  },
  {
    name: "missing-timestamp",
    status: 422,
    mutate: (bundle) => {
      delete bundle.timestamp;
    },
  },
  {
    name: "malformed-timestamp",
    status: 400,
    mutate: (bundle) => {
      bundle.timestamp = "20 April 2021";
    },
  },
  {
    name: "future-timestamp",
    status: 422,
    mutate: (bundle) => {
      bundle.timestamp = new Date(Date.now() + DAY_MS).toISOString();
    },
  },
  {
    name: "no-entries",
    status: 422,
    mutate: (bundle) => {
      bundle.entry = [];
    },
  },
  {
    name: "first-entry-not-messageheader",
    status: 422,
    mutate: (bundle) => {
      bundle.entry = [...entries(bundle).slice(1), firstEntry(bundle)];
    },
  },
  {
    name: "non-uuid-message-id",
    status: 422,
    mutate: (bundle) => renameMessage(bundle, "message-header-1"),
  },
  {
    name: "mismatched-fullurl",
    status: 422,
    mutate: (bundle) => {
      firstEntry(bundle).fullUrl = `urn:uuid:${crypto.randomUUID()}`;
    },
  },
  {
    name: "unknown-response-identifier",
    status: 422,
    mutate: (bundle) => {
      messageHeader(bundle).response = { identifier: crypto.randomUUID(), code: "ok" };
    },
  },
  {
    name: "missing-source",
    status: 422,
    mutate: (bundle) => {
      delete messageHeader(bundle).source;
    },
  },
  {
    name: "upper-case-message-id",
    status: 422,
    mutate: (bundle) => renameMessage(bundle, messageIdOf(bundle).toUpperCase()),
  },
  {
    name: "unresolved-focus",
    status: 422,
    mutate: (bundle) => {
      messageHeader(bundle).focus = [{ reference: "Task/123" }];
    },
  },
];

/** Reads every fixture message, sorted by name. Needs --allow-read. */
export async function loadFixtures(): Promise<Fixture[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(FIXTURE_DIR)) {
    if (entry.isFile && entry.name.endsWith(".json")) names.push(entry.name);
  }
  return await Promise.all(names.sort().map(loadFixture));
}

async function loadFixture(fileName: string): Promise<Fixture> {
  const bytes = await Deno.readFile(new URL(fileName, FIXTURE_DIR));
  return {
    name: fileName.replace(/\.json$/, ""),
    bytes,
    bundle: JSON.parse(new TextDecoder().decode(bytes)),
  };
}

/**
 * A copy in which every UUID is replaced by a fresh one, the same old UUID always by the same new one, so
 * Bundle.id, MessageHeader.id, its fullUrl and internal urn:uuid references stay consistent: a valid message
 * becomes a new, distinct valid message. A MessageHeader.response.identifier is renamed too; set it afterwards
 * with {@link asResponseTo}.
 */
export function withNewIds(bundle: FhirBundle): FhirBundle {
  const renamed = new Map<string, string>();
  const json = JSON.stringify(bundle).replace(UUID_ANYWHERE, (old) => {
    const key = old.toLowerCase();
    const fresh = renamed.get(key) ?? crypto.randomUUID();
    renamed.set(key, fresh);
    return fresh;
  });
  return JSON.parse(json);
}

/** A copy whose MessageHeader answers the message with the given id (MessageHeader.response). */
export function asResponseTo(bundle: FhirBundle, messageId: string, code = "ok"): FhirBundle {
  const copy = structuredClone(bundle);
  messageHeader(copy).response = { identifier: messageId, code };
  return copy;
}

/** A copy with the same ids but other content (a timestamp one second earlier): a 409 once the original is stored. */
export function conflictingVariant(bundle: FhirBundle): FhirBundle {
  const copy = structuredClone(bundle);
  copy.timestamp = new Date(Date.parse(bundle.timestamp ?? "") - 1000).toISOString();
  return copy;
}

/**
 * One variant per EventStore rule, each from a fresh copy of the valid `bundle` (see {@link withNewIds}) that
 * breaks that rule alone, so none depends on what is stored. The first-entry variant moves the MessageHeader
 * last, so `bundle` needs at least two entries, as every fixture has; the future timestamp is a day ahead of
 * the system clock, not of a store's `now`.
 */
export function invalidVariants(bundle: FhirBundle): InvalidVariant[] {
  return INVALID_MUTATIONS.map(({ name, status, mutate }) => {
    const variant = withNewIds(bundle);
    mutate(variant);
    return { name, status, bundle: variant };
  });
}

/** The message id: MessageHeader.id, the id of the first entry's resource. */
export function messageIdOf(bundle: FhirBundle): string {
  const id = messageHeader(bundle).id;
  if (id === undefined) throw new TypeError("the MessageHeader has no id");
  return id;
}

function renameMessage(bundle: FhirBundle, messageId: string): void {
  messageHeader(bundle).id = messageId;
  firstEntry(bundle).fullUrl = `urn:uuid:${messageId}`;
}

function messageHeader(bundle: FhirBundle): FhirResource {
  const resource = firstEntry(bundle).resource;
  if (resource?.resourceType !== "MessageHeader") {
    throw new TypeError("the first entry is not a MessageHeader");
  }
  return resource;
}

function firstEntry(bundle: FhirBundle): FhirBundleEntry {
  const [entry] = entries(bundle);
  if (!entry) throw new TypeError("the Bundle has no entries");
  return entry;
}

function entries(bundle: FhirBundle): FhirBundleEntry[] {
  return bundle.entry ?? [];
}
