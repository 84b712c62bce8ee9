/** What to do with a message the EventStore rejects as invalid (see `--on-rejected`). */
export type RejectedPolicy = "dead-letter" | "skip" | "stop";
export const REJECTED_POLICIES: readonly RejectedPolicy[] = ["dead-letter", "skip", "stop"];

/** The rejected-message policy, with the dead-letter topic exactly when the policy needs one. */
export type RejectedConfig =
  | { policy: "skip" | "stop"; deadLetterTopic?: undefined }
  | { policy: "dead-letter"; deadLetterTopic: string };
