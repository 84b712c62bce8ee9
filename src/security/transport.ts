/** https, or http to this machine only: credentials never cross a network in clear. */
export function isSecureOrLocal(href: string): boolean {
  const url = new URL(href);
  return url.protocol === "https:" || ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
}
