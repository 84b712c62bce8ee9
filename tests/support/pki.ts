/**
 * A throwaway PKI for the TLS tests, made with the `openssl` command line: a test CA, a server
 * certificate for 127.0.0.1/localhost, a client certificate, and a second CA that signed nothing we use
 * (for "wrong CA" tests). Keys are EC P-256 in unencrypted PKCS#8 PEM, which Kafka, Deno and Node all read.
 */
import { join } from "node:path";
import { runTool } from "./jvm.ts";

/** A certificate and its private key, as PEM file paths. */
export interface CertPair {
  cert: string;
  key: string;
}

/** The files of a test PKI; `close()` removes them. */
export interface TestPki extends AsyncDisposable {
  dir: string;
  /** The CA that signed the server and client certificates. */
  ca: string;
  /** A CA that signed neither: trusting only it must fail. */
  otherCa: string;
  /** For 127.0.0.1 and localhost, signed by `ca`. */
  server: CertPair & { keystore: string };
  /** CN=eventsink, signed by `ca`, for TLS client authentication. */
  client: CertPair;
  close(): Promise<void>;
}

const OPENSSL_NEEDED = "openssl is needed to make the test certificates (apt-get install openssl)";

/** Makes a fresh PKI in a temporary directory. */
export function makeTestPki(): Promise<TestPki> {
  return inTempDir("eventsink-pki-", async (at) => {
    await makeCa(at("ca"), "eventsink test CA");
    await makeCa(at("other-ca"), "some other CA");
    await issue(at("server"), at("ca"), "localhost", [
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "extendedKeyUsage=serverAuth",
    ]);
    await issue(at("client"), at("ca"), "eventsink", ["extendedKeyUsage=clientAuth"]);
    // Kafka's PEM keystore: the private key, then the certificate chain.
    const keystore = at("server-keystore.pem");
    await Deno.writeTextFile(
      keystore,
      [at("server.key"), at("server.pem"), at("ca.pem")].map((f) => Deno.readTextFileSync(f)).join(""),
    );
    return {
      ca: at("ca.pem"),
      otherCa: at("other-ca.pem"),
      server: { cert: at("server.pem"), key: at("server.key"), keystore },
      client: { cert: at("client.pem"), key: at("client.key") },
    };
  });
}

/**
 * Makes files in a fresh temporary directory with `make` (given a path maker); the result closes (and is
 * disposed of) by removing the directory, which a failing `make` removes at once.
 */
export async function inTempDir<T>(
  prefix: string,
  make: (at: (name: string) => string) => Promise<T>,
): Promise<T & { dir: string; close(): Promise<void> } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix });
  const close = () => Deno.remove(dir, { recursive: true });
  try {
    const made = await make((name) => join(dir, name));
    return { ...made, dir, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** An EC P-256 private key in `<base>.key`. */
export function newKey(base: string): Promise<void> {
  return openssl([
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    `${base}.key`,
  ]);
}

/** A self-signed CA in `<base>.pem` and `<base>.key`, with `extensions` besides CA:TRUE. */
export async function makeCa(
  base: string,
  name: string,
  extensions = ["keyUsage=critical,keyCertSign,cRLSign"],
): Promise<void> {
  await newKey(base);
  await openssl([
    ...["req", "-x509", "-new", "-key", `${base}.key`, "-out", `${base}.pem`, "-days", "2"],
    ...["-subj", `/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE"],
    ...extensions.flatMap((extension) => ["-addext", extension]),
  ]);
}

/** A certificate for `commonName` signed by the CA at `ca`, in `<base>.pem` and `<base>.key`. */
export async function issue(
  base: string,
  ca: string,
  commonName: string,
  extensions: string[],
): Promise<void> {
  await newKey(base);
  await openssl(["req", "-new", "-key", `${base}.key`, "-out", `${base}.csr`, "-subj", `/CN=${commonName}`]);
  await Deno.writeTextFile(`${base}.ext`, ["basicConstraints=CA:FALSE", ...extensions, ""].join("\n"));
  await openssl([
    ...["x509", "-req", "-in", `${base}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial"],
    ...["-out", `${base}.pem`, "-days", "2", "-extfile", `${base}.ext`],
  ]);
}

export async function openssl(args: string[]): Promise<void> {
  const result = await runTool("openssl", args, OPENSSL_NEEDED);
  if (result.code !== 0) {
    throw new Error(`openssl ${args[0]} failed (exit ${result.code}):\n${result.output}`);
  }
}
