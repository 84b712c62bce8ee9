import assert from "node:assert/strict";
import { readArgs } from "./command_line.ts";

/** What was read, with the flags as a plain object (node:util's parseArgs gives one without a prototype). */
function read(args: string[]) {
  const given = readArgs(args);
  return "error" in given ? given : { command: given.command, flags: { ...given.flags } };
}

function error(args: string[]): string {
  const read = readArgs(args);
  assert.ok("error" in read, `${args.join(" ")} was read`);
  return read.error;
}

Deno.test("command line: the command word, then the flags", () => {
  assert.deepEqual(read(["--topic", "t"]), { command: "run", flags: { topic: "t" } });
  assert.deepEqual(read(["check", "--kafka-tls"]), { command: "check", flags: { "kafka-tls": true } });
  assert.deepEqual(read(["help"]), { command: "help", flags: {} });
  assert.match(error(["--topic", "t", "check"]), /^an argument without an option/, "a command comes first");
});

Deno.test("command line: a mistyped flag or command gets the nearest known one", () => {
  assert.equal(error(["--borkers", "x"]), "Unknown option '--borkers': did you mean --brokers?");
  assert.equal(error(["check", "--retry-mx=5s"]), "Unknown option '--retry-mx': did you mean --retry-max?");
  assert.equal(error(["--hepl"]), "Unknown option '--hepl': did you mean --help?");
  assert.equal(error(["--nope"]), "Unknown option '--nope'", "no flag near enough");
  assert.equal(error(["chek"]), "unknown command 'chek': did you mean check?");
  assert.equal(error(["hlep"]), "unknown command 'hlep': did you mean help?");
  assert.match(error(["S3cretValue9"]), /^an argument without an option \(not repeated here/);
  assert.match(error(["--oauth-client-secret", "x"]), /secrets are not taken on the command line/);
});
