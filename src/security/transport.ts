/** What eventsink asks of a URL it sends credentials or records to. */
import { REDACTED } from "../outward.ts";

const LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]"];

/** https, or http to this machine only: credentials never cross a network in clear. */
export function isSecureOrLocal(href: string): boolean {
  const url = new URL(href);
  return url.protocol === "https:" || (url.protocol === "http:" && LOCAL_HOSTS.includes(url.hostname));
}

/**
 * What makes `text` unfit as a URL eventsink talks to, or undefined: it must parse, be http or https, and
 * carry no user name or password (which would be printed with the URL and sent as Basic credentials).
 */
export function webUrlProblem(text: string): string | undefined {
  if (!URL.canParse(text)) return "is not a URL";
  const url = new URL(text);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `must be http or https, not ${url.protocol.slice(0, -1)}`;
  }
  if (url.username !== "" || url.password !== "") {
    return "must not carry a user name or password";
  }
  return undefined;
}

/** A URL as it may be printed: a user name and password in it masked (a URL that did not parse included). */
export function printableUrl(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/*)[^/?#]*@/i, `$1${REDACTED}@`);
}
