/** The command line as given: the command word, then the flags; and what to say when it is wrong. Pure. */
import { parseArgs } from "node:util";
import { SECRETS } from "../security/credentials.ts";
import { OPTIONS } from "./options.ts";
import { nearest } from "./suggest.ts";

/** The words that name a command; without one, eventsink forwards (runs). */
const COMMANDS = ["check", "help"] as const;
export type CommandWord = (typeof COMMANDS)[number] | "run";
export type Flags = Record<string, string | boolean | undefined>;

const FLAGS = ["help", "version", ...OPTIONS.map((option) => option.flag)];

/** The command and its flags, or the usage error that says what is wrong with them. */
export function readArgs(args: string[]): { command: CommandWord; flags: Flags } | { error: string } {
  const word = args[0];
  const command = COMMANDS.find((name) => name === word) ?? "run";
  try {
    const { values } = parseArgs({
      args: command === "run" ? args : args.slice(1),
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
        ...Object.fromEntries(
          OPTIONS.map((o) => [o.flag, { type: "boolean" in o ? "boolean" : "string" } as const]),
        ),
      },
    });
    return { command, flags: values };
  } catch (error) {
    const typo = command === "run" && word !== undefined && !word.startsWith("-")
      ? nearest(word, COMMANDS)
      : undefined;
    // Close enough to a command to be a typo of it, the word is no secret: it may be repeated.
    if (typo !== undefined) return { error: `unknown command '${word}': did you mean ${typo}?` };
    return { error: argsErrorMessage((error as Error).message) };
  }
}

/**
 * A command-line parse error as the user sees it: never repeating what may be a secret; for an unknown
 * flag, the nearest known one, and for a secret given as a flag, where it may come from instead.
 */
function argsErrorMessage(message: string): string {
  // A stray argument may be a secret given after a flag that takes none: it is not repeated.
  if (message.startsWith("Unexpected argument")) {
    return "an argument without an option (not repeated here: it may be a secret); options are --name value";
  }
  const flag = /^Unknown option '--([^']+)'/.exec(message)?.[1];
  if (flag === undefined) return message;
  const spec = Object.values(SECRETS).find((secret) => secret.fileOption === `${flag}-file`);
  if (spec !== undefined) {
    return `${message}: secrets are not taken on the command line. Set ${spec.env.join(" or ")}, ` +
      `give --${spec.fileOption}, or load the systemd credential ${spec.credential}`;
  }
  const typo = nearest(flag, FLAGS);
  return typo === undefined ? message : `${message}: did you mean --${typo}?`;
}
