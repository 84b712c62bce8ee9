import assert from "node:assert/strict";
import { batch, deferred, memoryLog } from "../../tests/support/fakes.ts";
import { PartitionCommits } from "./commits.ts";
import { PartitionOffsets } from "./offsets.ts";

function commitsOf(...offsets: number[]) {
  const tracker = new PartitionOffsets();
  for (const offset of offsets) tracker.add(offset);
  const { log, lines } = memoryLog();
  return { tracker, commits: new PartitionCommits(tracker, log), lines };
}

Deno.test("commits: nothing is committed before the first record of the term is accounted for", async () => {
  const { tracker, commits } = commitsOf(10, 11);
  const taken = batch(0, [10, 11]);
  commits.taken(taken, 10);
  await commits.commit();
  assert.deepEqual(taken.commits, []);
  tracker.complete(10);
  await commits.commit();
  assert.deepEqual(taken.commits, [11]);
  assert.equal(commits.committed(), 11);
});

Deno.test("commits: an unchanged commit point is not committed again", async () => {
  const { tracker, commits } = commitsOf(0, 1);
  const taken = batch(0, [0, 1]);
  commits.taken(taken, 0);
  tracker.complete(0);
  await commits.commit();
  await commits.commit();
  commits.tick();
  await commits.commit();
  assert.deepEqual(taken.commits, [1]);
});

Deno.test("commits: they land one after another, in order", async () => {
  const { tracker, commits } = commitsOf(0, 1, 2);
  const first = deferred();
  const answers = [first.promise];
  const taken = batch(0, [0, 1, 2], { commit: () => answers.shift() ?? Promise.resolve() });
  commits.taken(taken, 0);
  tracker.complete(0);
  const one = commits.commit();
  await new Promise((resolve) => setTimeout(resolve, 0)); // the first is at the broker
  tracker.complete(1);
  const two = commits.commit();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(taken.commits, [], "the second waits for the first");
  first.resolve();
  await Promise.all([one, two]);
  assert.deepEqual(taken.commits, [1, 2]);
});

Deno.test("commits: the ticker adds none while one is still waiting for the broker", async () => {
  const { tracker, commits } = commitsOf(0, 1, 2);
  const slow = deferred();
  let asked = 0;
  const taken = batch(0, [0, 1, 2], {
    commit: () => {
      asked++;
      return slow.promise;
    },
  });
  commits.taken(taken, 0);
  tracker.complete(0);
  commits.tick();
  await new Promise((resolve) => setTimeout(resolve, 0)); // the tick's commit is at the broker
  tracker.complete(1);
  commits.tick();
  commits.tick();
  slow.resolve();
  await commits.commit();
  assert.equal(asked, 2, "the waiting tick, then the explicit commit");
  assert.deepEqual(taken.commits, [1, 2]);
});

Deno.test("commits: a failed commit is a warning, and the next one commits the same progress", async () => {
  const { tracker, commits, lines } = commitsOf(5, 6);
  let fail = true;
  const taken = batch(0, [5, 6], {
    commit: () =>
      fail ? Promise.reject(new Error("The coordinator is not aware of this member")) : Promise.resolve(),
  });
  commits.taken(taken, 5);
  tracker.complete(5);
  await commits.commit();
  assert.equal(commits.committed(), undefined);
  const warning = lines.find((line) => line.level === "warn");
  assert.equal(
    warning?.msg,
    "Cannot commit offset; the records after the last commit may be delivered again",
  );
  assert.equal(warning?.offset, 6);
  assert.equal(warning?.error, "The coordinator is not aware of this member");
  fail = false;
  commits.tick();
  await commits.commit();
  assert.deepEqual(taken.commits, [6]);
});

Deno.test("commits: the ticker commits through the latest batch taken", async () => {
  const { tracker, commits } = commitsOf(0, 1, 2, 3);
  const older = batch(0, [0, 1]);
  const latest = batch(0, [2, 3]);
  commits.taken(older, 0);
  commits.taken(latest, 2);
  tracker.complete(0);
  tracker.complete(1);
  tracker.complete(2);
  commits.tick();
  await commits.commit(older);
  assert.deepEqual(latest.commits, [3]);
  assert.deepEqual(older.commits, []);
});
