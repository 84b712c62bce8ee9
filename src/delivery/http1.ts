import type { Answer, PostRequest, Send } from "./send.ts";
import { BodyStart } from "./body_start.ts";
import {
  type AnswerHead,
  bodyFraming,
  HttpFailure,
  parseAnswerHead,
  parseChunkSize,
} from "./http1_answer.ts";

/**
 * POSTs to a plain-HTTP EventStore over HTTP/1.1 on Deno's own TCP, with keep-alive connections. undici
 * runs on Deno's node:net layer, whose sockets cost three to four times this (docs/performance.md, "Where
 * the CPU goes"), and the HTTP client was the largest part of a record's CPU. It reads only what a delivery
 * needs — the status, `Retry-After` and the body's first `maxAnswerBytes` — and is strict where a
 * misreading could pair an answer with the wrong request: anything it cannot frame ends the connection.
 * TLS and HTTP/2 stay with undici and Deno's fetch (sender.ts).
 */
export function http1Sender(
  options: { maxAnswerBytes: number; connect?: Connect; keepIdleMs?: number },
): Send {
  const connect = options.connect ?? ((hostname, port) => Deno.connect({ hostname, port }));
  const keepIdleMs = options.keepIdleMs ?? KEEP_IDLE_MS;
  const idle = new Map<string, Connection[]>();
  let target = { url: "", host: "", hostname: "", port: 0, path: "" };

  return async (request, signal) => {
    if (signal.aborted) throw signal.reason;
    if (target.url !== request.url) {
      const url = new URL(request.url);
      const port = Number(url.port || 80);
      target = {
        url: request.url,
        host: url.host,
        hostname: url.hostname,
        port,
        path: url.pathname + url.search,
      };
    }
    const { host, hostname, port, path } = target;
    const head = requestHead(path, host, request);
    const pool = idle.get(host) ?? idle.set(host, []).get(host)!;
    // A kept connection the server closed meanwhile fails before any answer byte: once more, on a new one.
    for (let attempt = 0;; attempt++) {
      const kept = attempt === 0 ? takeIdle(pool, keepIdleMs) : undefined;
      const connection = kept ?? new Connection(await connectOrFail(connect, hostname, port, signal));
      try {
        const { answer, reusable } = await connection.exchange(
          head,
          request.body,
          options.maxAnswerBytes,
          signal,
        );
        if (reusable) {
          connection.idleSince = performance.now();
          pool.push(connection);
        } else connection.close();
        return answer;
      } catch (error) {
        connection.close();
        if (signal.aborted) throw signal.reason;
        if (!(kept && error instanceof ClosedBeforeAnswer)) throw error;
      }
    }
  };
}

/**
 * A kept connection idle longer than this is not used again (undici's default keep-alive timeout): a
 * firewall or NAT that forgot it silently would swallow the next request until its timeout.
 */
export const KEEP_IDLE_MS = 4_000;

/** The newest idle connection of `pool`, unless it was idle too long — then the older ones were too. */
function takeIdle(pool: Connection[], keepIdleMs: number): Connection | undefined {
  const connection = pool.pop();
  if (connection === undefined || performance.now() - connection.idleSince <= keepIdleMs) return connection;
  for (const old of [connection, ...pool.splice(0)]) old.close();
  return undefined;
}

/** Opens a TCP connection to the store. */
export type Connect = (hostname: string, port: number) => Promise<Deno.Conn>;

/** The connection ended before the first byte of an answer. */
class ClosedBeforeAnswer extends HttpFailure {
  constructor(cause?: unknown) {
    super("the EventStore closed the connection before answering", "EVENTSINK_CLOSED", cause);
  }
}

async function connectOrFail(connect: Connect, hostname: string, port: number, signal: AbortSignal) {
  // A connect does not hear the signal: an address that drops SYNs would hold the attempt past its timeout
  // (and a stop past its grace) for the system's connect timeout. The attempt ends with the signal; a
  // connection made after that is closed.
  const connecting = connect(hostname, port);
  const aborted = Promise.withResolvers<never>();
  const onAbort = () => aborted.reject(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const conn = await Promise.race([connecting, aborted.promise]);
    if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    return conn;
  } catch (error) {
    if (signal.aborted) connecting.then((late) => late.close(), () => {});
    if (signal.aborted) throw signal.reason;
    throw new HttpFailure(`cannot connect to ${hostname}:${port}`, "EVENTSINK_CONNECT", error);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

const encoder = new TextEncoder();

/** The request line and headers. Header values were checked where they came from (request.ts, config). */
function requestHead(path: string, host: string, request: PostRequest): string {
  let head = `POST ${path} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (const name in request.headers) {
    const value = request.headers[name]!;
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) {
      throw new Error(`header ${JSON.stringify(name)} spans lines`);
    }
    head += `${name}: ${value}\r\n`;
  }
  return `${head}content-length: ${request.body.length}\r\n\r\n`;
}

/** The largest answer head read: anything longer is not an EventStore's answer. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Bodies up to this size go out in the same write as the head. */
const JOIN_BYTES = 64 * 1024;
/**
 * Requests up to this size are written from the connection's own buffer, so that sending one allocates no
 * memory (the garbage of two buffers a request made V8 collect more often; docs/performance.md).
 */
const OWN_BUFFER_BYTES = 16 * 1024;
const decoder = new TextDecoder();

/** One kept-alive connection: one exchange at a time, bytes read ahead kept for the next read. */
class Connection {
  #conn: Deno.Conn;
  #buffer = new Uint8Array(16 * 1024);
  /** Where requests are put together (see OWN_BUFFER_BYTES), made with the first one. */
  #out: Uint8Array | undefined;
  #start = 0;
  #end = 0;
  #closed = false;
  /** When it was last put back into the pool (performance.now()). */
  idleSince = 0;
  /** Whether a byte of the answer to the current request arrived. */
  #answering = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  async exchange(
    head: string,
    body: Uint8Array,
    maxAnswerBytes: number,
    signal: AbortSignal,
  ): Promise<{ answer: Answer; reusable: boolean }> {
    const onAbort = () => this.close();
    signal.addEventListener("abort", onAbort, { once: true });
    this.#answering = false;
    try {
      // A head's UTF-8 takes at most 3 bytes a character.
      const most = head.length * 3 + body.length;
      if (most <= OWN_BUFFER_BYTES || body.length <= JOIN_BYTES) {
        const out = most <= OWN_BUFFER_BYTES
          ? this.#out ??= new Uint8Array(OWN_BUFFER_BYTES)
          : new Uint8Array(most);
        const { written } = encoder.encodeInto(head, out);
        out.set(body, written);
        await this.#write(out.subarray(0, written + body.length));
      } else {
        await this.#write(encoder.encode(head));
        await this.#write(body);
      }
      return await this.#readAnswer(maxAnswerBytes);
    } catch (error) {
      // Refused or reset before the answer began (a kept connection the server closed, most often).
      if (!this.#answering) throw error instanceof ClosedBeforeAnswer ? error : new ClosedBeforeAnswer(error);
      if (error instanceof HttpFailure) throw error;
      throw new HttpFailure("the connection to the EventStore failed", "EVENTSINK_IO", error);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  async #write(bytes: Uint8Array): Promise<void> {
    for (let written = 0; written < bytes.length;) written += await this.#conn.write(bytes.subarray(written));
  }

  /** Reads more bytes into the buffer; false at the end of the stream. */
  async #fill(): Promise<boolean> {
    if (this.#start > 0 && this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end === this.#buffer.length) {
      const live = this.#end - this.#start;
      const grown = new Uint8Array(
        live * 2 > this.#buffer.length ? this.#buffer.length * 2 : this.#buffer.length,
      );
      grown.set(this.#buffer.subarray(this.#start, this.#end));
      this.#buffer = grown;
      this.#start = 0;
      this.#end = live;
    }
    const n = await this.#conn.read(this.#buffer.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    this.#answering = true;
    return true;
  }

  async #readAnswer(maxAnswerBytes: number): Promise<{ answer: Answer; reusable: boolean }> {
    for (;;) {
      const head = await this.#readHead();
      // 1xx answers (100 Continue, 103 Early Hints) come before the real one.
      if (head.status >= 100 && head.status < 200) continue;
      const framing = bodyFraming(head);
      const collected = framing.kind === "none"
        ? { text: "", whole: true }
        : framing.kind === "length"
        ? await this.#readLength(framing.length, maxAnswerBytes)
        : framing.kind === "chunked"
        ? await this.#readChunked(maxAnswerBytes)
        : await this.#readToEnd(maxAnswerBytes);
      const answer = {
        status: head.status,
        retryAfter: head.retryAfter,
        body: collected.text,
      };
      const reusable = collected.whole && framing.kind !== "close" && head.keepAlive &&
        this.#start === this.#end;
      return { answer, reusable };
    }
  }

  /** The status line and headers of the next answer. */
  async #readHead(): Promise<AnswerHead> {
    for (;;) {
      const at = indexOfHeadEnd(this.#buffer, this.#start, this.#end);
      if (at >= 0) {
        const text = decoder.decode(this.#buffer.subarray(this.#start, at));
        this.#start = at + 4;
        return parseAnswerHead(text);
      }
      if (this.#end - this.#start > MAX_HEAD_BYTES) {
        throw new HttpFailure("the EventStore's answer has a head over 64 KiB", "EVENTSINK_PROTOCOL");
      }
      if (!(await this.#fill())) {
        if (!this.#answering) throw new ClosedBeforeAnswer();
        throw new HttpFailure(
          "the EventStore closed the connection in the middle of its answer",
          "EVENTSINK_CLOSED",
        );
      }
    }
  }

  /** Takes up to `n` buffered bytes (reading when none are buffered); empty at the end of the stream. */
  async #take(n: number): Promise<Uint8Array | undefined> {
    if (this.#start === this.#end && !(await this.#fill())) return undefined;
    const take = Math.min(n, this.#end - this.#start);
    const bytes = this.#buffer.slice(this.#start, this.#start + take);
    this.#start += take;
    return bytes;
  }

  async #readLength(length: number, max: number): Promise<Collected> {
    const kept = new BodyStart(max);
    for (let left = length; left > 0;) {
      if (kept.full) return { text: kept.text(), whole: false };
      const bytes = await this.#take(left);
      if (bytes === undefined) {
        throw new HttpFailure("the EventStore's answer ended short of its length", "EVENTSINK_CLOSED");
      }
      kept.add(bytes);
      left -= bytes.length;
    }
    return { text: kept.text(), whole: true };
  }

  async #readChunked(max: number): Promise<Collected> {
    const kept = new BodyStart(max);
    for (;;) {
      if (kept.full) return { text: kept.text(), whole: false };
      const size = parseChunkSize(await this.#line());
      if (size === 0) {
        while ((await this.#line()) !== "") { /* trailers: not needed */ }
        return { text: kept.text(), whole: true };
      }
      for (let left = size; left > 0;) {
        const bytes = await this.#take(left);
        if (bytes === undefined) {
          throw new HttpFailure("the EventStore's answer ended inside a chunk", "EVENTSINK_CLOSED");
        }
        kept.add(bytes);
        left -= bytes.length;
      }
      if ((await this.#line()) !== "") {
        throw new HttpFailure("the EventStore's chunked answer is malformed", "EVENTSINK_PROTOCOL");
      }
    }
  }

  async #readToEnd(max: number): Promise<Collected> {
    const kept = new BodyStart(max);
    while (!kept.full) {
      const bytes = await this.#take(max);
      if (bytes === undefined) return { text: kept.text(), whole: true };
      kept.add(bytes);
    }
    return { text: kept.text(), whole: false };
  }

  /** The next line (without its CRLF) of a chunked body. */
  async #line(): Promise<string> {
    for (;;) {
      for (let i = this.#start; i + 1 < this.#end; i++) {
        if (this.#buffer[i] === 13 && this.#buffer[i + 1] === 10) {
          const line = decoder.decode(this.#buffer.subarray(this.#start, i));
          this.#start = i + 2;
          return line;
        }
      }
      if (this.#end - this.#start > MAX_HEAD_BYTES) {
        throw new HttpFailure("the EventStore's chunked answer is malformed", "EVENTSINK_PROTOCOL");
      }
      if (!(await this.#fill())) {
        throw new HttpFailure("the EventStore's answer ended inside a chunk", "EVENTSINK_CLOSED");
      }
    }
  }
}

/** The start of an answer's body (see BodyStart). */
interface Collected {
  text: string;
  /** The body was read to its end: the connection is at the next answer. */
  whole: boolean;
}

/** Where the blank line after an answer's headers ends (the index of its CR), or -1. */
function indexOfHeadEnd(buffer: Uint8Array, start: number, end: number): number {
  for (let i = start; i + 3 < end; i++) {
    if (buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10) return i;
  }
  return -1;
}
