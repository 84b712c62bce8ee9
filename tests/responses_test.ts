/**
 * Responses and their requests: the EventStore refuses a response (MessageHeader.response.identifier) until
 * the message it answers is stored. A response that arrives first is retried for --response-wait.
 */
import assert from "node:assert/strict";
import { createTopic, endOffsets, produce, uniqueName } from "./support/broker.ts";
import { spawnEventsink } from "./support/eventsink_process.ts";
import { asResponseTo, loadFixtures, messageIdOf, withNewIds } from "./support/fhir_variants.ts";
import {
  message,
  openPipeline,
  type Pipeline,
  waitUntil,
  waitUntilCommittedToEnd,
} from "./support/pipeline.ts";
import { headerText, readTopic } from "./support/topic_reader.ts";

const FHIR_JSON = { "Content-Type": "application/fhir+json" };
const FAST_RETRIES = ["--retry-initial", "100ms", "--retry-max", "500ms"];
const [ORDER, DIALOG] = (await loadFixtures()).map((fixture) => fixture.bundle);

function allCommitted(p: Pipeline): Promise<void> {
  return waitUntilCommittedToEnd(p.bootstrap, p.group, p.topic, 60_000);
}

Deno.test("responses: one produced before its request, which another partition holds up, is stored after it", async () => {
  await using p = await openPipeline(2);
  const deadLetterTopic = uniqueName("dead");
  await createTopic(p.bootstrap, deadLetterTopic, 1);
  const blocker = message(withNewIds(ORDER!));
  const request = message(withNewIds(ORDER!));
  const response = message(asResponseTo(withNewIds(DIALOG!), request.messageId));
  // The request's partition waits behind a record the EventStore fails for the first seconds.
  p.store.faults.failMessage(blocker.messageId, 503);
  await produce(p.bootstrap, p.topic, [
    { key: response.messageId, value: response.bytes, headers: FHIR_JSON, partition: 0 },
    { key: blocker.messageId, value: blocker.bytes, headers: FHIR_JSON, partition: 1 },
    { key: request.messageId, value: request.bytes, headers: FHIR_JSON, partition: 1 },
  ]);
  const sink = await spawnEventsink({
    ...p,
    args: ["--dead-letter-topic", deadLetterTopic, "--response-wait", "60s", ...FAST_RETRIES],
  });
  try {
    await waitUntil(
      "the response was refused for its missing request",
      () => p.store.requests().some((r) => r.messageId === response.messageId && r.status === 422),
    );
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    p.store.faults.failMessage(blocker.messageId, null);
    await allCommitted(p);
    const stored = p.store.stored().map((s) => s.messageId);
    assert.deepEqual(stored.filter((id) => id !== blocker.messageId), [
      request.messageId,
      response.messageId,
    ]);
    assert.equal((await endOffsets(p.bootstrap, deadLetterTopic)).get(0), 0, "no dead letter");
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(), 0);
  } finally {
    await sink.close();
  }
});

Deno.test("responses: one whose request never comes is dead-lettered after --response-wait, with the store's text", async () => {
  await using p = await openPipeline(1);
  const deadLetterTopic = uniqueName("dead");
  await createTopic(p.bootstrap, deadLetterTopic, 1);
  const orphan = message(asResponseTo(withNewIds(DIALOG!), crypto.randomUUID()));
  const after = message(withNewIds(ORDER!));
  await produce(p.bootstrap, p.topic, [
    { key: orphan.messageId, value: orphan.bytes, headers: FHIR_JSON },
    { key: after.messageId, value: after.bytes, headers: FHIR_JSON },
  ]);
  const started = performance.now();
  const sink = await spawnEventsink({
    ...p,
    args: ["--dead-letter-topic", deadLetterTopic, "--response-wait", "3s", ...FAST_RETRIES],
  });
  try {
    await allCommitted(p);
    assert.ok(performance.now() - started >= 3_000, "not before the window ended");
    const [letter, ...more] = await readTopic(p.bootstrap, deadLetterTopic);
    assert.deepEqual(more, []);
    assert.deepEqual(letter!.value, orphan.bytes);
    assert.equal(headerText(letter!, "eventsink.error.status"), "422");
    assert.match(
      headerText(letter!, "eventsink.error.reason")!,
      /^EventStore answered 422: Message with ID=\S+ does not exist\. \(still after --response-wait 3s\)$/,
    );
    assert.ok(Number(headerText(letter!, "eventsink.error.attempts")) > 1, "retried within the window");
    assert.deepEqual(p.store.stored().map((s) => s.messageId), [messageIdOf(after.bundle)]);
    sink.signal("SIGTERM");
    assert.equal(await sink.exited(), 0);
  } finally {
    await sink.close();
  }
});

Deno.test("responses: by default (--ordering message) a partition's records go at once, a response after its request", async (t) => {
  for (
    const [ordering, extra] of [["message (the default)", []], ["none", ["--ordering", "none"]]] as const
  ) {
    await t.step(ordering, async () => {
      await using p = await openPipeline(1);
      const request = message(withNewIds(ORDER!));
      const response = message(asResponseTo(withNewIds(DIALOG!), request.messageId));
      const others = Array.from({ length: 6 }, () => message(withNewIds(ORDER!)));
      // The request fails for a while: the others must not wait for it, the response must.
      p.store.faults.failMessage(request.messageId, 503);
      await produce(
        p.bootstrap,
        p.topic,
        [request, response, ...others].map((m) => ({ key: m.messageId, value: m.bytes, headers: FHIR_JSON })),
      );
      const sink = await spawnEventsink({ ...p, args: [...FAST_RETRIES, ...extra], ordering: null });
      try {
        await p.store.waitForStored(6, { timeoutMs: 30_000 });
        assert.equal(
          p.store.stored().some((s) => s.messageId === request.messageId),
          false,
          "others went first",
        );
        p.store.faults.failMessage(request.messageId, null);
        await allCommitted(p);
        const stored = p.store.stored().map((s) => s.messageId);
        assert.ok(stored.indexOf(request.messageId) < stored.indexOf(response.messageId));
        const refused = p.store.requests().filter((r) =>
          r.messageId === response.messageId && r.status === 422
        );
        if (ordering === "none") {
          assert.ok(refused.length > 0, "under none the response went first, and was retried");
        } else assert.deepEqual(refused, [], "the response waited for its request");
        sink.signal("SIGTERM");
        assert.equal(await sink.exited(), 0);
      } finally {
        await sink.close();
      }
    });
  }
});
