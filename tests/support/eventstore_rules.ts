/**
 * How the real hops-eventstore judges a `$process-message` body, for the stand-in (eventstore.ts): its FHIR
 * JSON parser (400), the cast to Bundle (500), HAPI FHIR's instance validation against the base R4 profiles
 * (422, issues of code `processing` with a location) and its own message checks (422, one issue of code
 * `exception`), in that order, with the real store's texts. tests/contract_test.ts holds the measured answers.
 *
 * HAPI's validation is reproduced only for what the platform's messages exercise: the required elements of
 * Bundle, MessageHeader, Task, Questionnaire and QuestionnaireResponse, the codes of their status fields,
 * focus references that must resolve inside the Bundle, absolute canonicals and Identifier.system values,
 * instants, and strings over 1 MB. It does not check other resource types, other bindings, cardinalities or
 * invariants, extensions or profiles; the real store does, so a message the stand-in takes may still be a
 * 422 there. Warnings are not reported.
 */

/** An OperationOutcome issue. */
export interface Issue {
  severity: "error";
  code: "exception" | "processing";
  /** Absent where the real store's exception had no message. */
  diagnostics?: string;
  location?: string[];
}

/** A message the store takes, before it looks at what it has stored. */
export interface Message {
  /** MessageHeader.id, in the lower-case form, the idempotency key. */
  messageId: string;
  /** Bundle.id in the lower-case form, unique in the store. */
  bundleId: string;
  /** The message as the store keeps it: parsed and re-encoded. */
  resource: JsonObject;
  /** The re-encoded content that a repeat is compared by. */
  content: string;
}

/** The store's verdict on a body: a message to store, or a refusal with its status and issues. */
export type Verdict =
  | { kind: "message"; message: Message }
  | { kind: "refused"; status: 400 | 422 | 500; issues: Issue[] };

/** What the checks need from the store. */
export interface RuleContext {
  now: Date;
  /** Whether a message with this (lower-case) id is stored. */
  isStored: (messageId: string) => boolean;
}

export type JsonObject = Record<string, unknown>;

const MAX_STRING_LENGTH = 1024 * 1024;
const PROFILE = "http://hl7.org/fhir/StructureDefinition";
/** The coded elements of our messages that HAPI's parser reads into Java enums: an unknown code is a 400. */
const CODED: readonly {
  resourceType: string;
  path: readonly string[];
  type: string;
  codes: readonly string[];
}[] = [
  {
    resourceType: "Bundle",
    path: ["type"],
    type: "BundleType",
    codes: [
      "document",
      "message",
      "transaction",
      "transaction-response",
      "batch",
      "batch-response",
      "history",
      "searchset",
      "collection",
    ],
  },
  {
    resourceType: "MessageHeader",
    path: ["response", "code"],
    type: "ResponseType",
    codes: ["ok", "transient-error", "fatal-error"],
  },
  {
    resourceType: "Task",
    path: ["status"],
    type: "TaskStatus",
    codes: [
      "draft",
      "requested",
      "received",
      "accepted",
      "rejected",
      "ready",
      "cancelled",
      "in-progress",
      "on-hold",
      "failed",
      "completed",
      "entered-in-error",
    ],
  },
  {
    resourceType: "Task",
    path: ["intent"],
    type: "TaskIntent",
    codes: [
      "unknown",
      "proposal",
      "plan",
      "order",
      "original-order",
      "reflex-order",
      "filler-order",
      "instance-order",
      "option",
    ],
  },
  {
    resourceType: "Questionnaire",
    path: ["status"],
    type: "PublicationStatus",
    codes: ["draft", "active", "retired", "unknown"],
  },
  {
    resourceType: "QuestionnaireResponse",
    path: ["status"],
    type: "QuestionnaireResponseStatus",
    codes: ["in-progress", "completed", "amended", "entered-in-error", "stopped"],
  },
];
/** Required elements HAPI reports as "minimum required = 1", by resource type. */
const REQUIRED: Record<string, readonly string[]> = {
  Task: ["status", "intent"],
  Questionnaire: ["status"],
  QuestionnaireResponse: ["status"],
};
// Java's UUID.fromString: five groups of hex digits, each at most its canonical length.
const JAVA_UUID = /^([0-9a-f]{1,8})-([0-9a-f]{1,4})-([0-9a-f]{1,4})-([0-9a-f]{1,4})-([0-9a-f]{1,12})$/i;
const GROUP_LENGTHS = [8, 4, 4, 4, 12];
const DATE_LIKE = /^\d{4}(-\d{2}(-\d{2}(T.*)?)?)?$/;
const INSTANT =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))$/;
const ABSOLUTE = /^[a-z][a-z0-9+.-]*:/i;
/**
 * A missing id is a NullPointerException in the real store. Its text (`Cannot invoke "String.length()"
 * because "name" is null`) comes only until the JVM has compiled that path; then HotSpot throws a
 * preallocated exception without a message (OmitStackTraceInFastThrow) and the issue has no diagnostics.
 * The stand-in answers as a store that has run a while does.
 */
const NULL_ID = "";

/** Judges a body as the real store does; `text` is the body read as UTF-8, bad bytes replaced. */
export function judge(text: string, context: RuleContext): Verdict {
  const parsed = parseFhirJson(text);
  if (typeof parsed === "string") return refused(400, exception(parsed));
  if (parsed.resourceType !== "Bundle") {
    return refused(500, exception("Cannot transform this request's content to org.hl7.fhir.r4.model.Bundle"));
  }
  const issues = validationIssues(parsed);
  if (issues.length > 0) return refused(422, ...issues);
  const checked = ownChecks(parsed, context);
  if (typeof checked === "string") return refused(422, exception(checked));
  return { kind: "message", message: { ...checked, resource: parsed, content: canonicalJson(parsed) } };
}

/** JSON with object keys sorted: the same content gives the same text whatever its order and whitespace. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, inner) =>
      isObject(inner)
        ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : 1)))
        : inner,
  );
}

/** The lower-case form of a UUID as Java's UUID.fromString reads it, or null when it does not. */
export function javaUuid(text: string): string | null {
  const groups = JAVA_UUID.exec(text)?.slice(1);
  if (!groups || text.length > 36) return null;
  return groups.map((group, index) => group.padStart(GROUP_LENGTHS[index]!, "0").toLowerCase()).join("-");
}

function refused(status: 400 | 422 | 500, ...issues: Issue[]): Verdict {
  return { kind: "refused", status, issues };
}

/** An issue of code exception; "" for an exception without a message. */
function exception(diagnostics: string): Issue {
  return { severity: "error", code: "exception", ...(diagnostics === "" ? {} : { diagnostics }) };
}

function processing(diagnostics: string, location: string): Issue {
  return { severity: "error", code: "processing", diagnostics, location: [location] };
}

// ---- the parser (400) ----

/** The resource, or why HAPI's JSON parser refuses the text. */
function parseFhirJson(text: string): JsonObject | string {
  const failed = "Failed to parse JSON encoded FHIR content: ";
  const first = text.trimStart()[0];
  if (first === undefined) return `${failed}Did not find any content to parse`;
  if (first !== "{") {
    return `${failed}Content does not appear to be FHIR JSON, first non-whitespace character was: '${first}' (must be '{')`;
  }
  let value: JsonObject;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return failed + (error as Error).message;
  }
  if (typeof value.resourceType !== "string") {
    return "Invalid JSON content detected, missing required element: 'resourceType'";
  }
  return codeProblem(value) ?? timestampProblem(value) ?? value;
}

function codeProblem(resource: JsonObject): string | null {
  const resources = [resource, ...entryResources(resource).map((entry) => entry.resource)];
  for (const each of resources) {
    for (const { path, type, codes } of CODED.filter((coded) => coded.resourceType === each.resourceType)) {
      const value = path.reduce<unknown>(
        (inner, element) => (isObject(inner) ? inner[element] : undefined),
        each,
      );
      if (typeof value === "string" && !codes.includes(value)) {
        const element = path.at(-1);
        return `[element="${element}"] Invalid attribute value "${value}": Unknown ${type} code '${value}'`;
      }
    }
  }
  return null;
}

function timestampProblem(resource: JsonObject): string | null {
  const timestamp = resource.timestamp;
  if (typeof timestamp !== "string" || DATE_LIKE.test(timestamp)) return null;
  return `[element="timestamp"] Invalid attribute value "${timestamp}": Invalid date/time format: "${timestamp}"`;
}

// ---- HAPI's instance validation (422, code processing) ----

function validationIssues(bundle: JsonObject): Issue[] {
  const issues: Issue[] = [];
  if (bundle.type === undefined) issues.push(minimum("Bundle", "type", "Bundle"));
  if (typeof bundle.timestamp === "string" && !INSTANT.test(bundle.timestamp)) {
    issues.push(processing(`The instant '${bundle.timestamp}' is not valid (by regex)`, "Bundle.timestamp"));
  }
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  if (bundle.type === "message") issues.push(...messageShapeIssues(entries));
  entries.forEach((entry, index) => {
    if (isObject(entry) && typeof entry.fullUrl !== "string") {
      issues.push(processing("Bundle entry missing fullUrl", `Bundle.entry[${index}]`));
    }
  });
  for (const { resource, index } of entryResources(bundle)) {
    issues.push(
      ...resourceIssues(resource, `Bundle.entry[${index}].resource.ofType(${resource.resourceType})`),
    );
  }
  const header = messageHeaderOf(bundle);
  if (header) issues.push(...headerIssues(header, entries));
  return issues;
}

function messageShapeIssues(entries: unknown[]): Issue[] {
  const bdl12 = processing(
    "bdl-12: 'A message must have a MessageHeader as the first resource' Rule 'A message must have a MessageHeader as the first resource' Failed",
    "Bundle",
  );
  if (entries.length === 0) {
    return [bdl12, processing("Documents or Messages must contain at least one entry", "Bundle")];
  }
  const first = entries[0];
  if (isObject(first) && isObject(first.resource) && first.resource.resourceType === "MessageHeader") {
    return [];
  }
  // HAPI names the entry after the first here, as measured.
  return [
    bdl12,
    processing("The first entry in a message must be a MessageHeader", "Bundle.entry[1].resource"),
  ];
}

function headerIssues(header: JsonObject, entries: unknown[]): Issue[] {
  const at = "Bundle.entry[0].resource.ofType(MessageHeader)";
  const issues: Issue[] = [];
  if (!isObject(header.source)) issues.push(minimum("MessageHeader", "source", at));
  else if (header.source.endpoint === undefined) {
    issues.push(minimum("MessageHeader", "source.endpoint", `${at}.source`));
  }
  if (header.eventCoding === undefined && header.eventUri === undefined) {
    issues.push(minimum("MessageHeader", "event[x]", at));
  }
  if (isObject(header.response) && header.response.code === undefined) {
    issues.push(minimum("MessageHeader", "response.code", `${at}.response`));
  }
  const fullUrls = new Set(entries.map((entry) => (isObject(entry) ? entry.fullUrl : undefined)));
  const focus = Array.isArray(header.focus) ? header.focus : [];
  focus.forEach((reference, index) => {
    const target = isObject(reference) ? reference.reference : undefined;
    if (typeof target === "string" && !fullUrls.has(target)) {
      // HAPI names the entry after the MessageHeader here, as measured.
      const location = `Bundle.entry[1].resource.focus[${index}].reference`;
      issues.push(processing(`Can't find '${target}' in the bundle (MessageHeader Data)`, location));
    }
  });
  return issues;
}

function resourceIssues(resource: JsonObject, at: string): Issue[] {
  const issues = (REQUIRED[resource.resourceType as string] ?? [])
    .filter((element) => resource[element] === undefined)
    .map((element) => minimum(resource.resourceType as string, element, at));
  const questionnaire = resource.questionnaire;
  if (
    resource.resourceType === "QuestionnaireResponse" && typeof questionnaire === "string" &&
    !ABSOLUTE.test(questionnaire) && !questionnaire.startsWith("#")
  ) {
    const said =
      `Canonical URLs must be absolute URLs if they are not fragment references (${questionnaire}) `;
    issues.push(processing(said, `${at}.questionnaire`));
  }
  walk(resource, at, (value, path, key) => {
    if (typeof value === "string" && value.length > MAX_STRING_LENGTH) {
      issues.push(processing("value is longer than permitted maximum length of 1 MB (1048576 bytes)", path));
    }
    if (
      key === "identifier" && isObject(value) && typeof value.system === "string" &&
      !ABSOLUTE.test(value.system)
    ) {
      issues.push(processing("Identifier.system must be an absolute reference, not a local reference", path));
    }
  });
  return issues;
}

function minimum(resourceType: string, element: string, location: string): Issue {
  const said =
    `${resourceType}.${element}: minimum required = 1, but only found 0 (from ${PROFILE}/${resourceType})`;
  return processing(said, location);
}

/** Calls `visit` for every value below `value` with its FHIRPath and the name of the element holding it. */
function walk(
  value: unknown,
  path: string,
  visit: (value: unknown, path: string, key: string) => void,
): void {
  if (!isObject(value)) return;
  for (const [key, inner] of Object.entries(value)) {
    const items = Array.isArray(inner) ? inner.map((item, index) => [item, `${path}.${key}[${index}]`]) : [
      [inner, `${path}.${key}`],
    ];
    for (const [item, itemPath] of items as [unknown, string][]) {
      visit(item, itemPath, key);
      walk(item, itemPath, visit);
    }
  }
}

// ---- the store's own checks (422, one issue of code exception) ----

function ownChecks(
  bundle: JsonObject,
  { now, isStored }: RuleContext,
): Omit<Message, "resource" | "content"> | string {
  if (bundle.type !== "message") return "Bundle must be of type 'Message'";
  const header = messageHeaderOf(bundle)!;
  const bundleId = uuidOf(bundle.id);
  if (typeof bundleId !== "string") return bundleId.problem;
  const messageId = uuidOf(header.id);
  if (typeof messageId !== "string") return messageId.problem;
  if (isVariantZero(bundleId)) return "Bundle.Id must be valid UUID.";
  if (isVariantZero(messageId)) return "MessageHeader.Id must be valid UUID.";
  if (bundleId === messageId) return "Bundle.id and MessageHeader.id cannot be equal.";
  if (bundle.timestamp === undefined) return "Bundle.timestamp is required.";
  if (Date.parse(bundle.timestamp as string) >= now.getTime()) {
    return "Bundle.timestamp cannot be in the future.";
  }
  if (firstEntryOf(bundle)?.fullUrl !== `urn:uuid:${messageId}`) {
    return "entry.fullUrl does not match MessageHeader.id.";
  }
  const answered = isObject(header.response) ? header.response.identifier : undefined;
  if (answered !== undefined) {
    const request = uuidOf(answered);
    if (typeof request !== "string") return request.problem;
    if (!isStored(request)) return `Message with ID=${request} does not exist.`;
  }
  return { messageId, bundleId };
}

/** The UUID in its lower-case form, or why Kotlin's idAsUUID fails on the id. */
function uuidOf(id: unknown): string | { problem: string } {
  if (typeof id !== "string") return { problem: NULL_ID };
  return javaUuid(id) ?? { problem: `Invalid UUID string: ${id}` };
}

/** Java's UUID.variant() is 0 when the top bit of the fourth group is clear. */
function isVariantZero(uuid: string): boolean {
  return Number.parseInt(uuid[19]!, 16) < 8;
}

// ---- shapes ----

function entryResources(bundle: JsonObject): { resource: JsonObject; index: number }[] {
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  return entries.flatMap((entry, index) =>
    isObject(entry) && isObject(entry.resource) && typeof entry.resource.resourceType === "string"
      ? [{ resource: entry.resource, index }]
      : []
  );
}

function firstEntryOf(bundle: JsonObject): JsonObject | undefined {
  const entries = bundle.entry;
  return Array.isArray(entries) && isObject(entries[0]) ? entries[0] : undefined;
}

/** The first entry's resource when it is a MessageHeader. */
export function messageHeaderOf(bundle: JsonObject): JsonObject | undefined {
  const resource = firstEntryOf(bundle)?.resource;
  return isObject(resource) && resource.resourceType === "MessageHeader" ? resource : undefined;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
