/**
 * The EventStore contract: what hops-eventstore answers on `$process-message` and the Bundle search. Every
 * assertion was measured against the real store (navikt/helseopplysninger apps/hops-eventstore at 00e0fd26,
 * HAPI FHIR 5.6, PostgreSQL), and eventsink's stand-in (tests/support/eventstore.ts) must answer the same.
 *
 * By default it runs against the stand-in. Against any EventStore (it stores messages there, each with
 * fresh ids):
 *   EVENTSINK_CONTRACT_URL=http://host:port   the base URL, without /fhir/4.0
 *   EVENTSINK_CONTRACT_TOKEN_URL, _CLIENT_ID, _CLIENT_SECRET, _SCOPE   OAuth2 client credentials for it
 *   deno test --allow-all tests/contract_test.ts
 */
import assert from "node:assert/strict";
import { startEventStore } from "./support/eventstore.ts";
import {
  asResponseTo,
  conflictingVariant,
  type FhirBundle,
  type FhirResource,
  loadFixtures,
  messageIdOf,
  withNewIds,
} from "./support/fhir_variants.ts";

const FHIR_JSON = "application/fhir+json";
/** The Content-Type of every answer with a body. */
const ANSWER_TYPE = "application/fhir+json; fhirVersion=4.0; charset=UTF-8";
const STAND_IN_TOKEN = "contract-token";
const FIXTURES = await loadFixtures();
const [BESTILLING, DIALOGMELDING, PATIENT_LINK] = FIXTURES.map((fixture) => fixture.bundle) as [
  FhirBundle,
  FhirBundle,
  FhirBundle,
];

interface Target extends AsyncDisposable {
  /** Base URL without /fhir/4.0. */
  url: string;
  /** A valid Authorization header. */
  authorization: string;
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

interface Issue {
  severity: string;
  code: string;
  diagnostics?: string;
  location?: string[];
}

interface SearchBundle {
  resourceType: string;
  type: string;
  total?: number;
  link?: { relation: string; url: string }[];
  entry?: { fullUrl: string; resource: FhirBundle }[];
}

interface SendOptions {
  method?: string;
  path?: string;
  /** null sends none. */
  contentType?: string | null;
  /** null sends none; default the target's valid token. */
  authorization?: string | null;
  headers?: Record<string, string>;
}

/** The EventStore under test: a fresh stand-in, or the one in EVENTSINK_CONTRACT_URL with a new token. */
async function openTarget(): Promise<Target> {
  const url = Deno.env.get("EVENTSINK_CONTRACT_URL");
  if (url === undefined) {
    const store = await startEventStore({ token: STAND_IN_TOKEN });
    return { url: store.url, authorization: `Bearer ${STAND_IN_TOKEN}`, [Symbol.asyncDispose]: store.close };
  }
  const setting = (name: string) => {
    const value = Deno.env.get(`EVENTSINK_CONTRACT_${name}`);
    if (value === undefined) throw new Error(`EVENTSINK_CONTRACT_URL needs EVENTSINK_CONTRACT_${name} too`);
    return value;
  };
  const answer = await fetch(setting("TOKEN_URL"), {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: setting("CLIENT_ID"),
      client_secret: setting("CLIENT_SECRET"),
      scope: setting("SCOPE"),
    }),
  });
  const { access_token: token } = await answer.json();
  if (!answer.ok || typeof token !== "string") {
    throw new Error(`the token endpoint answered ${answer.status}`);
  }
  return {
    url: url.replace(/\/+$/, ""),
    authorization: `Bearer ${token}`,
    [Symbol.asyncDispose]: async () => {},
  };
}

async function send(
  target: Target,
  body: FhirBundle | string | Uint8Array | null,
  options: SendOptions = {},
): Promise<Reply> {
  const headers = new Headers(options.headers);
  const contentType = options.contentType === undefined ? FHIR_JSON : options.contentType;
  if (contentType !== null) headers.set("content-type", contentType);
  const authorization = options.authorization === undefined ? target.authorization : options.authorization;
  if (authorization !== null) headers.set("authorization", authorization);
  const response = await fetch(target.url + (options.path ?? "/fhir/4.0/$process-message"), {
    method: options.method ?? "POST",
    body: body === null ? null : bytesOf(body),
    headers,
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

function bytesOf(body: FhirBundle | string | Uint8Array): Uint8Array<ArrayBuffer> {
  if (body instanceof Uint8Array) return new Uint8Array(body);
  return new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body));
}

function search(target: Target, query: string, options: SendOptions = {}): Promise<Reply> {
  return send(target, null, {
    method: "GET",
    path: `/fhir/4.0/Bundle${query}`,
    contentType: null,
    ...options,
  });
}

function assertEmpty(reply: Reply, status: number): void {
  assert.equal(reply.status, status, reply.text);
  assert.equal(reply.text, "", "the answer has no body");
}

/** The answer is an OperationOutcome with `status`; gives its issues. */
function outcomeOf(reply: Reply, status: number): Issue[] {
  assert.equal(reply.status, status, reply.text);
  assert.equal(reply.headers.get("content-type"), ANSWER_TYPE);
  const outcome = JSON.parse(reply.text);
  assert.equal(outcome.resourceType, "OperationOutcome");
  return outcome.issue;
}

/** One issue of code `exception`, as the store's own checks and its failures give; gives its diagnostics. */
function exceptionOf(reply: Reply, status: number): string {
  const issues = outcomeOf(reply, status);
  assert.equal(issues.length, 1, reply.text);
  assert.equal(issues[0]?.severity, "error");
  assert.equal(issues[0]?.code, "exception");
  return issues[0]?.diagnostics ?? "";
}

/** The error issues of a HAPI validation failure: 422, code `processing`, located. */
function validationErrorsOf(reply: Reply): Issue[] {
  const errors = outcomeOf(reply, 422).filter((issue) => issue.severity === "error");
  assert.ok(errors.length > 0, reply.text);
  for (const issue of errors) {
    assert.equal(issue.code, "processing", reply.text);
    assert.ok(issue.location?.[0], `each issue names where: ${reply.text}`);
  }
  return errors;
}

function fresh(bundle: FhirBundle = BESTILLING): FhirBundle {
  return withNewIds(bundle);
}

function header(bundle: FhirBundle): FhirResource {
  return bundle.entry?.[0]?.resource as FhirResource;
}

function resourceOf(bundle: FhirBundle, resourceType: string): FhirResource {
  const found = bundle.entry?.find((entry) => entry.resource?.resourceType === resourceType)?.resource;
  assert.ok(found, `the message has a ${resourceType}`);
  return found;
}

function changed(bundle: FhirBundle, change: (copy: FhirBundle) => void): FhirBundle {
  const copy = fresh(bundle);
  change(copy);
  return copy;
}

/** The UUID with its variant bits cleared (variant 0, the NCS variant), which the store refuses. */
function variantZero(uuid: string): string {
  return `${uuid.slice(0, 19)}0${uuid.slice(20)}`;
}

/** Every stored message, in storage order, by following the search's next links. */
async function everyStored(target: Target): Promise<{ fullUrl: string; resource: FhirBundle }[]> {
  const entries: { fullUrl: string; resource: FhirBundle }[] = [];
  for (let offset = 0;;) {
    const page = JSON.parse(
      (await search(target, `?_count=100&_offset=${offset}`)).text,
    ) as SearchBundle;
    entries.push(...(page.entry ?? []));
    const next = page.link?.find((link) => link.relation === "next");
    if (!next) return entries;
    offset = Number(new URL(next.url).searchParams.get("_offset"));
  }
}

/** JSON with its object keys sorted, to compare content regardless of the order of elements. */
function canonical(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, inner) =>
      inner && typeof inner === "object" && !Array.isArray(inner)
        ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : 1)))
        : inner,
  );
}

Deno.test("202 with an empty body for a valid message", async (t) => {
  await using target = await openTarget();
  for (const fixture of FIXTURES) {
    await t.step(`${fixture.name}, its file as it is and with new ids`, async () => {
      assertEmpty(await send(target, fixture.bytes), 202);
      assertEmpty(await send(target, fresh(fixture.bundle)), 202);
    });
  }
  await t.step("the path may spell $ as %24", async () => {
    assertEmpty(await send(target, fresh(), { path: "/fhir/4.0/%24process-message" }), 202);
  });
});

Deno.test("idempotent on MessageHeader.id, comparing content rather than bytes", async (t) => {
  await using target = await openTarget();
  const original = fresh(DIALOGMELDING);
  assertEmpty(await send(target, original), 202);

  await t.step("the same message again is 202, with other whitespace too", async () => {
    assertEmpty(await send(target, original), 202);
    assertEmpty(await send(target, JSON.stringify(original, null, 2)), 202);
  });

  await t.step("other content under the same message id is 409", async () => {
    const said = exceptionOf(await send(target, conflictingVariant(original)), 409);
    assert.equal(said, `A Message with ID=${messageIdOf(original)} already exists.`);
    exceptionOf(await send(target, { ...original, id: crypto.randomUUID() }), 409);
  });
});

Deno.test("500 for a new message that reuses a stored Bundle.id, every time", async () => {
  await using target = await openTarget();
  const stored = fresh(BESTILLING);
  assertEmpty(await send(target, stored), 202);
  for (let attempt = 0; attempt < 2; attempt++) {
    const said = exceptionOf(await send(target, { ...fresh(BESTILLING), id: stored.id }), 500);
    assert.match(said, /duplicate key value violates unique constraint/);
    assert.ok(said.includes(`(bundle_id)=(${stored.id})`), said);
  }
});

Deno.test("copies of one new message at once: one 202, the rest 202 or 500 on a unique constraint", async () => {
  await using target = await openTarget();
  const message = fresh();
  // Copies in flight together can all find the message id absent; every insert after the first fails.
  const replies = await Promise.all(Array.from({ length: 4 }, () => send(target, message)));
  for (const reply of replies) {
    if (reply.status === 202) continue;
    assert.match(
      exceptionOf(reply, 500),
      /duplicate key value violates unique constraint "event_bundle_id_key"/,
    );
  }
  assert.ok(replies.some((reply) => reply.status === 202), "one copy is stored");
  assertEmpty(await send(target, message), 202);
  // One message id under two Bundle.ids: the later is 409 when it finds the first, else the constraint.
  const first = fresh();
  const pair = await Promise.all([send(target, first), send(target, { ...first, id: crypto.randomUUID() })]);
  assert.deepEqual(pair.filter((reply) => reply.status === 202).length, 1, pair.map((r) => r.text).join());
  for (const reply of pair.filter((reply) => reply.status !== 202)) {
    if (reply.status === 409) continue;
    assert.match(
      exceptionOf(reply, 500),
      /unique constraint "event_message_id_key"\n {2}Detail: Key \(message_id\)=/,
    );
  }
});

Deno.test("500 for a FHIR resource that is not a Bundle", async () => {
  await using target = await openTarget();
  for (const resource of [{ resourceType: "Patient", id: crypto.randomUUID() }, header(fresh())]) {
    const said = exceptionOf(await send(target, resource as FhirBundle), 500);
    assert.equal(said, "Cannot transform this request's content to org.hl7.fhir.r4.model.Bundle");
  }
});

Deno.test("400 when the FHIR JSON parser refuses the body", async (t) => {
  await using target = await openTarget();
  const cases: [string, string | FhirBundle, RegExp][] = [
    ["an empty body", "", /^Failed to parse JSON encoded FHIR content: Did not find any content to parse$/],
    ["text", "this is not JSON", /first non-whitespace character was: 't' \(must be '\{'\)/],
    ["truncated JSON", JSON.stringify(fresh()).slice(0, 100), /^Failed to parse JSON encoded FHIR content: /],
    ["a JSON array", "[1, 2]", /first non-whitespace character was: '\[' \(must be '\{'\)/],
    ["JSON null", "null", /first non-whitespace character was: 'n'/],
    [
      "an object without resourceType",
      JSON.stringify({ ...fresh(), resourceType: undefined }),
      /^Invalid JSON content detected, missing required element: 'resourceType'$/,
    ],
    [
      "an unknown Task.status",
      changed(BESTILLING, (copy) => (resourceOf(copy, "Task").status = "nonsense")),
      /^\[element="status"\] Invalid attribute value "nonsense": Unknown TaskStatus code 'nonsense'$/,
    ],
    [
      "an unknown QuestionnaireResponse.status",
      changed(DIALOGMELDING, (copy) => (resourceOf(copy, "QuestionnaireResponse").status = "bogus")),
      /Unknown QuestionnaireResponseStatus code 'bogus'$/,
    ],
    [
      "an unknown Bundle.type",
      changed(BESTILLING, (copy) => (copy.type = "nonsense")),
      /Unknown BundleType code 'nonsense'$/,
    ],
    [
      "an unknown MessageHeader.response.code",
      changed(BESTILLING, (copy) => (header(copy).response = { identifier: crypto.randomUUID(), code: "x" })),
      /Unknown ResponseType code 'x'$/,
    ],
    [
      "a timestamp that is no date",
      changed(BESTILLING, (copy) => (copy.timestamp = "20 April 2021")),
      /^\[element="timestamp"\] Invalid attribute value "20 April 2021": Invalid date\/time format/,
    ],
  ];
  for (const [name, body, diagnostics] of cases) {
    await t.step(name, async () => {
      assert.match(exceptionOf(await send(target, body), 400), diagnostics);
    });
  }
});

Deno.test("422 when HAPI validation against the base R4 profiles fails", async (t) => {
  await using target = await openTarget();
  const cases: [string, FhirBundle, string, RegExp][] = [
    [
      "no Bundle.type",
      changed(BESTILLING, (copy) => delete copy.type),
      "Bundle",
      /^Bundle\.type: minimum required = 1, but only found 0/,
    ],
    [
      "no entries",
      changed(BESTILLING, (copy) => (copy.entry = [])),
      "Bundle",
      /^Documents or Messages must contain at least one entry$/,
    ],
    [
      "a first entry that is not the MessageHeader",
      changed(BESTILLING, (copy) => copy.entry?.push(copy.entry.shift()!)),
      "Bundle.entry[1].resource",
      /^The first entry in a message must be a MessageHeader$/,
    ],
    [
      "an entry without fullUrl",
      changed(BESTILLING, (copy) => delete copy.entry![0]!.fullUrl),
      "Bundle.entry[0]",
      /^Bundle entry missing fullUrl$/,
    ],
    [
      "no MessageHeader.source",
      changed(BESTILLING, (copy) => delete header(copy).source),
      "Bundle.entry[0].resource.ofType(MessageHeader)",
      /^MessageHeader\.source: minimum required = 1, but only found 0/,
    ],
    [
      "no MessageHeader.source.endpoint",
      changed(BESTILLING, (copy) => (header(copy).source = { name: "x" })),
      "Bundle.entry[0].resource.ofType(MessageHeader).source",
      /^MessageHeader\.source\.endpoint: minimum required = 1/,
    ],
    [
      "no MessageHeader.event[x]",
      changed(BESTILLING, (copy) => delete header(copy).eventUri),
      "Bundle.entry[0].resource.ofType(MessageHeader)",
      /^MessageHeader\.event\[x\]: minimum required = 1, but only found 0/,
    ],
    [
      "a MessageHeader.response without code",
      changed(BESTILLING, (copy) => (header(copy).response = { identifier: crypto.randomUUID() })),
      "Bundle.entry[0].resource.ofType(MessageHeader).response",
      /^MessageHeader\.response\.code: minimum required = 1/,
    ],
    [
      "a relative focus reference",
      changed(
        BESTILLING,
        (copy) => ((header(copy).focus as { reference: string }[])[0]!.reference = "Task/123"),
      ),
      "Bundle.entry[1].resource.focus[0].reference",
      /^Can't find 'Task\/123' in the bundle \(MessageHeader Data\)$/,
    ],
    [
      "a focus that is not in the Bundle",
      changed(
        BESTILLING,
        (copy) => ((header(copy).focus as { reference: string }[])[0]!.reference = "urn:uuid:x"),
      ),
      "Bundle.entry[1].resource.focus[0].reference",
      /^Can't find 'urn:uuid:x' in the bundle/,
    ],
    [
      "no Task.status",
      changed(BESTILLING, (copy) => delete resourceOf(copy, "Task").status),
      "Bundle.entry[1].resource.ofType(Task)",
      /^Task\.status: minimum required = 1, but only found 0/,
    ],
    [
      "no Task.intent",
      changed(BESTILLING, (copy) => delete resourceOf(copy, "Task").intent),
      "Bundle.entry[1].resource.ofType(Task)",
      /^Task\.intent: minimum required = 1/,
    ],
    [
      "no Questionnaire.status",
      changed(DIALOGMELDING, (copy) => delete resourceOf(copy, "Questionnaire").status),
      "Bundle.entry[1].resource.ofType(Questionnaire)",
      /^Questionnaire\.status: minimum required = 1/,
    ],
    [
      "no QuestionnaireResponse.status",
      changed(DIALOGMELDING, (copy) => delete resourceOf(copy, "QuestionnaireResponse").status),
      "Bundle.entry[2].resource.ofType(QuestionnaireResponse)",
      /^QuestionnaireResponse\.status: minimum required = 1/,
    ],
    [
      "a relative canonical",
      changed(
        DIALOGMELDING,
        (copy) => (resourceOf(copy, "QuestionnaireResponse").questionnaire = "Questionnaire/q1"),
      ),
      "Bundle.entry[2].resource.ofType(QuestionnaireResponse).questionnaire",
      /^Canonical URLs must be absolute URLs if they are not fragment references \(Questionnaire\/q1\) ?$/,
    ],
    [
      "a relative Identifier.system",
      changed(
        BESTILLING,
        (copy) => (resourceOf(copy, "Task").identifier = [{ system: "2.16.578", value: "1" }]),
      ),
      "Bundle.entry[1].resource.ofType(Task).identifier[0]",
      /^Identifier\.system must be an absolute reference, not a local reference$/,
    ],
    [
      "a timestamp without time zone",
      changed(BESTILLING, (copy) => (copy.timestamp = "2021-04-20T15:29:14")),
      "Bundle.timestamp",
      /^The instant '2021-04-20T15:29:14' is not valid \(by regex\)$/,
    ],
    [
      "a date as timestamp",
      changed(BESTILLING, (copy) => (copy.timestamp = "2021-04-20")),
      "Bundle.timestamp",
      /^The instant '2021-04-20' is not valid \(by regex\)$/,
    ],
    [
      "a string of more than 1 MB (1,048,576 characters)",
      changed(BESTILLING, (copy) => (resourceOf(copy, "Task").description = "x".repeat(1024 * 1024 + 1))),
      "Bundle.entry[1].resource.ofType(Task).description",
      /^value is longer than permitted maximum length of 1 MB \(1048576 bytes\)$/,
    ],
  ];
  for (const [name, body, location, diagnostics] of cases) {
    await t.step(name, async () => {
      const reply = await send(target, body);
      const errors = validationErrorsOf(reply);
      const issue = errors.find((candidate) => diagnostics.test(candidate.diagnostics ?? ""));
      assert.ok(issue, `an error issue says ${diagnostics}: ${reply.text.slice(0, 2000)}`);
      assert.equal(issue.location?.[0], location);
    });
  }
});

Deno.test("422 when the store's own message checks fail, saying which", async (t) => {
  await using target = await openTarget();
  const withMessageId = (bundle: FhirBundle, id: string) =>
    changed(bundle, (copy) => {
      header(copy).id = id;
      copy.entry![0]!.fullUrl = `urn:uuid:${id}`;
    });
  const cases: [string, FhirBundle, string | RegExp][] = [
    [
      "Bundle.type collection",
      changed(BESTILLING, (copy) => (copy.type = "collection")),
      "Bundle must be of type 'Message'",
    ],
    [
      "no Bundle.id",
      changed(BESTILLING, (copy) => delete copy.id),
      // The real store's NullPointerException text, or none once its JVM has compiled that path.
      /^(Cannot invoke "String\.length\(\)" because "name" is null)?$/,
    ],
    [
      "a Bundle.id that is no UUID",
      changed(BESTILLING, (copy) => (copy.id = "message-bundle-1")),
      "Invalid UUID string: message-bundle-1",
    ],
    [
      "a MessageHeader.id that is no UUID",
      withMessageId(BESTILLING, "header-1"),
      "Invalid UUID string: header-1",
    ],
    [
      "a variant-0 Bundle.id",
      changed(BESTILLING, (copy) => (copy.id = variantZero(copy.id!))),
      "Bundle.Id must be valid UUID.",
    ],
    [
      "a variant-0 MessageHeader.id",
      withMessageId(BESTILLING, variantZero(crypto.randomUUID())),
      "MessageHeader.Id must be valid UUID.",
    ],
    [
      "Bundle.id equal to MessageHeader.id",
      changed(BESTILLING, (copy) => (copy.id = header(copy).id)),
      "Bundle.id and MessageHeader.id cannot be equal.",
    ],
    ["no timestamp", changed(BESTILLING, (copy) => delete copy.timestamp), "Bundle.timestamp is required."],
    [
      "a timestamp in the future",
      changed(BESTILLING, (copy) => (copy.timestamp = new Date(Date.now() + 86_400_000).toISOString())),
      "Bundle.timestamp cannot be in the future.",
    ],
    [
      "a fullUrl other than urn:uuid:<MessageHeader.id>",
      changed(BESTILLING, (copy) => (copy.entry![0]!.fullUrl = `urn:uuid:${crypto.randomUUID()}`)),
      "entry.fullUrl does not match MessageHeader.id.",
    ],
    [
      "an upper-case MessageHeader.id (the fullUrl must be the lower-case form)",
      withMessageId(BESTILLING, crypto.randomUUID().toUpperCase()),
      "entry.fullUrl does not match MessageHeader.id.",
    ],
    [
      "a response.identifier that is no UUID",
      changed(BESTILLING, (copy) => (header(copy).response = { identifier: "not-a-uuid", code: "ok" })),
      "Invalid UUID string: not-a-uuid",
    ],
  ];
  for (const [name, body, diagnostics] of cases) {
    await t.step(name, async () => {
      const said = exceptionOf(await send(target, body), 422);
      if (typeof diagnostics === "string") assert.equal(said, diagnostics);
      else assert.match(said, diagnostics);
    });
  }

  await t.step("an upper-case Bundle.id is fine", async () => {
    assertEmpty(await send(target, changed(BESTILLING, (copy) => (copy.id = copy.id!.toUpperCase()))), 202);
  });
});

Deno.test("a response is 422 until the message it answers is stored, then 202", async () => {
  await using target = await openTarget();
  const request = fresh(DIALOGMELDING);
  const response = asResponseTo(fresh(PATIENT_LINK), messageIdOf(request));
  const said = exceptionOf(await send(target, response), 422);
  assert.equal(said, `Message with ID=${messageIdOf(request)} does not exist.`);
  assertEmpty(await send(target, request), 202);
  assertEmpty(await send(target, response), 202);
});

Deno.test("only application/fhir+json, bare or with fhirVersion=4.0, is taken; else 415 with no body", async (t) => {
  await using target = await openTarget();
  const taken = [
    FHIR_JSON,
    `${FHIR_JSON}; fhirVersion=4.0`,
    "Application/FHIR+JSON",
    `${FHIR_JSON};fhirversion=4.0`,
  ];
  for (const contentType of taken) {
    await t.step(
      `202 for ${contentType}`,
      async () => assertEmpty(await send(target, fresh(), { contentType }), 202),
    );
  }
  const refused = [
    "application/json",
    `${FHIR_JSON}; charset=utf-8`,
    `${FHIR_JSON}; fhirVersion=4.0; charset=utf-8`,
    `${FHIR_JSON}; fhirVersion=4.0.1`,
    `${FHIR_JSON}; fhirVersion=3.0`,
    "application/fhir+xml",
    "text/plain",
    null,
  ];
  for (const contentType of refused) {
    await t.step(`415 for ${contentType ?? "no Content-Type"}`, async () => {
      assertEmpty(await send(target, fresh(), { contentType }), 415);
    });
  }
  await t.step("the media type is judged before the body", async () => {
    assertEmpty(await send(target, "not JSON", { contentType: "text/plain" }), 415);
  });
});

Deno.test("401 with no body and no challenge without a valid bearer token", async (t) => {
  await using target = await openTarget();
  const refused: [string, string | null][] = [
    ["none", null],
    ["a wrong token", "Bearer wrong"],
    ["Basic", `Basic ${btoa("user:password")}`],
  ];
  for (const [name, authorization] of refused) {
    await t.step(name, async () => {
      for (
        const reply of [
          await send(target, fresh(), { authorization }),
          await search(target, "?_count=1", { authorization }),
        ]
      ) {
        assertEmpty(reply, 401);
        assert.equal(reply.headers.get("www-authenticate"), null);
      }
    });
  }
  await t.step("before the media type", async () => {
    assertEmpty(await send(target, fresh(), { authorization: null, contentType: "text/plain" }), 401);
  });
  await t.step("the scheme's case does not matter", async () => {
    assertEmpty(
      await send(target, fresh(), { authorization: target.authorization.replace("Bearer", "bearer") }),
      202,
    );
  });
});

Deno.test("404 with no body for other methods and paths, with a token or without", async (t) => {
  await using target = await openTarget();
  const cases: [string, SendOptions][] = [
    ["GET $process-message", { method: "GET", contentType: null }],
    ["PUT $process-message", { method: "PUT" }],
    ["DELETE $process-message", { method: "DELETE", contentType: null }],
    ["POST on the search", { path: "/fhir/4.0/Bundle" }],
    ["GET /fhir/4.0/Patient", { method: "GET", path: "/fhir/4.0/Patient", contentType: null }],
  ];
  for (const [name, options] of cases) {
    await t.step(name, async () => {
      const body = options.method === "GET" || options.method === "DELETE" ? null : fresh();
      assertEmpty(await send(target, body, options), 404);
      assertEmpty(await send(target, body, { ...options, authorization: null }), 404);
    });
  }
});

Deno.test("X-Request-ID up to 200 characters; a longer one is 400 with no body, before anything else", async () => {
  await using target = await openTarget();
  assertEmpty(await send(target, fresh(), { headers: { "x-request-id": "r".repeat(200) } }), 202);
  const long = { "x-request-id": "r".repeat(201) };
  assertEmpty(await send(target, fresh(), { headers: long }), 400);
  assertEmpty(
    await send(target, fresh(), { headers: long, authorization: null, contentType: "text/plain" }),
    400,
  );
  assertEmpty(
    await send(target, null, { headers: long, method: "GET", path: "/nowhere", contentType: null }),
    400,
  );
});

Deno.test("no size limit: a 12 MB message is stored", async () => {
  await using target = await openTarget();
  const big = changed(BESTILLING, (copy) => {
    resourceOf(copy, "Task").note = Array.from({ length: 12 }, () => ({ text: "x".repeat(1_000_000) }));
  });
  assertEmpty(await send(target, big), 202);
});

Deno.test("bytes that are not UTF-8 are read as U+FFFD: 400 where they break the JSON, else stored altered", async () => {
  await using target = await openTarget();
  const invalidUtf8 = new Uint8Array([0xff, 0xfe]);
  const structure = new Uint8Array([0x7b, ...invalidUtf8, 0x7d]);
  assert.match(
    exceptionOf(await send(target, structure), 400),
    /^Failed to parse JSON encoded FHIR content: /,
  );

  const message = changed(BESTILLING, (copy) => (resourceOf(copy, "Task").description = "MARK"));
  const [before, after] = JSON.stringify(message).split("MARK") as [string, string];
  const encoder = new TextEncoder();
  assertEmpty(
    await send(target, new Uint8Array([...encoder.encode(before), ...invalidUtf8, ...encoder.encode(after)])),
    202,
  );
  const stored = (await everyStored(target)).find((entry) => entry.resource.id === message.id);
  assert.equal(resourceOf(stored!.resource, "Task").description, "\ufffd\ufffd");
});

Deno.test("the search lists stored messages in storage order, re-encoded, with no total or self link", async () => {
  await using target = await openTarget();
  const messages = FIXTURES.map((fixture) => fresh(fixture.bundle));
  for (const message of messages) assertEmpty(await send(target, JSON.stringify(message, null, 3)), 202);
  const reply = await search(target, "?_count=1");
  assert.equal(reply.headers.get("content-type"), ANSWER_TYPE);
  const page = JSON.parse(reply.text) as SearchBundle;
  assert.equal(page.resourceType, "Bundle");
  assert.equal(page.type, "searchset");
  assert.equal(page.total, undefined);
  assert.deepEqual(page.link?.map((link) => link.relation), ["next"]);

  const stored = await everyStored(target);
  const ours = messages.map((message) => stored.findIndex((entry) => entry.resource.id === message.id));
  assert.ok(ours.every((index, i) => index >= 0 && (i === 0 || index > ours[i - 1]!)), `in order: ${ours}`);
  for (const [i, index] of ours.entries()) {
    const entry = stored[index]!;
    assert.deepEqual(Object.keys(entry).sort(), ["fullUrl", "resource"]);
    assert.equal(entry.fullUrl, `urn:uuid:${messages[i]!.id}`);
    assert.equal(canonical(entry.resource), canonical(messages[i]));
  }
});

Deno.test("search paging: _count defaults to 10, next only when a page is full", async (t) => {
  await using target = await openTarget();
  for (let i = 0; i < 11; i++) assertEmpty(await send(target, fresh()), 202);
  const pageOf = async (query: string) => JSON.parse((await search(target, query)).text) as SearchBundle;

  await t.step("no _count, or one that is not a number, gives 10 and a next link", async () => {
    for (const query of ["", "?_count=ten"]) {
      const page = await pageOf(query);
      assert.equal(page.entry?.length, 10);
      assert.equal(page.link?.length, 1);
      assert.equal(new URL(page.link![0]!.url).search, "?_count=10&_offset=10");
    }
  });

  await t.step("a page that is not full has no next link", async () => {
    const page = await pageOf("?_count=100000");
    assert.ok((page.entry?.length ?? 0) >= 11);
    assert.equal(page.link, undefined);
  });

  await t.step("_count=0 gives no entries and no links", async () => {
    const page = await pageOf("?_count=0");
    assert.equal(page.entry, undefined);
    assert.equal(page.link, undefined);
  });

  await t.step("an _offset past the end gives no entries, one that is not a number counts as 0", async () => {
    assert.equal((await pageOf("?_offset=1000000000")).entry, undefined);
    const first = await pageOf("?_count=1");
    assert.deepEqual(await pageOf("?_count=1&_offset=1.5").then((page) => page.entry), first.entry);
  });

  await t.step("a negative _count is 500", async () => {
    assert.match(exceptionOf(await search(target, "?_count=-1"), 500), /LIMIT must not be negative/);
  });
});
