/** What every way of sending a delivery's POST shares (sender.ts, http1.ts). */

/** A ready-to-send POST (see request.ts). */
export interface PostRequest {
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** What a POST came back with: enough to classify it. */
export interface Answer {
  status: number;
  retryAfter: string | null;
  /** The start of the body (at most sender.ts's MAX_ANSWER_BYTES), as text. */
  body: string;
}

/** Sends one POST; rejects on a network failure, or with the signal's reason when it aborts. */
export type Send = (request: PostRequest, signal: AbortSignal) => Promise<Answer>;
