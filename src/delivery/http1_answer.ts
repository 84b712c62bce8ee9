/** Reading an HTTP/1.1 answer: its head, how its body is framed, and the part of the body kept. Pure. */

/** A network failure, with a `code` as undici's have: a transient failure of the EventStore (outcome.ts). */
export class HttpFailure extends Error {
  readonly code: string;
  constructor(message: string, code: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
  }
}

/** What an answer's head says. */
export interface AnswerHead {
  status: number;
  retryAfter: string | null;
  contentLength: number | undefined;
  chunked: boolean;
  /** The connection may carry the next request (HTTP/1.1 without `Connection: close`). */
  keepAlive: boolean;
}

/** Reads an answer's status line and headers; throws an HttpFailure on anything that is not HTTP/1.x. */
export function parseAnswerHead(text: string): AnswerHead {
  const [statusLine = "", ...lines] = text.split("\r\n");
  const status = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: |$)/.exec(statusLine);
  if (status === null) throw new HttpFailure("the EventStore's answer is not HTTP/1.1", "EVENTSINK_PROTOCOL");
  const head: AnswerHead = {
    status: Number(status[2]),
    retryAfter: null,
    contentLength: undefined,
    chunked: false,
    keepAlive: status[1] === "1",
  };
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) {
      throw new HttpFailure("the EventStore's answer has a malformed header", "EVENTSINK_PROTOCOL");
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-length") {
      const length = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
      // Two lengths that differ, or one that is not a number, leave the answer without a frame.
      if (Number.isNaN(length) || (head.contentLength !== undefined && head.contentLength !== length)) {
        throw new HttpFailure("the EventStore's answer has an invalid Content-Length", "EVENTSINK_PROTOCOL");
      }
      head.contentLength = length;
    } else if (name === "transfer-encoding") {
      head.chunked = value.toLowerCase().split(",").at(-1)!.trim() === "chunked";
      if (!head.chunked) head.keepAlive = false;
    } else if (name === "connection") {
      const tokens = value.toLowerCase().split(",").map((token) => token.trim());
      if (tokens.includes("close")) head.keepAlive = false;
      else if (tokens.includes("keep-alive")) head.keepAlive = true;
    } else if (name === "retry-after") head.retryAfter = value;
  }
  return head;
}

type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  /** Read until the connection closes. */
  | { kind: "close" };

/** How the body after `head` is framed (RFC 9112, section 6.3). */
export function bodyFraming(head: AnswerHead): Framing {
  if (head.status === 204 || head.status === 304) return { kind: "none" };
  if (head.chunked) return { kind: "chunked" };
  if (head.contentLength !== undefined) {
    return head.contentLength === 0 ? { kind: "none" } : { kind: "length", length: head.contentLength };
  }
  return { kind: "close" };
}

/** A chunk's size line: hexadecimal, extensions after `;` ignored. */
export function parseChunkSize(line: string): number {
  const size = /^([0-9a-fA-F]{1,12})(?:;.*)?$/.exec(line.trim());
  if (size === null) {
    throw new HttpFailure("the EventStore's chunked answer is malformed", "EVENTSINK_PROTOCOL");
  }
  return parseInt(size[1]!, 16);
}
