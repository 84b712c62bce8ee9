/**
 * Certificate and key files for TLS, read and checked at start-up so that a wrong path, a wrong file or a
 * key that belongs to another certificate is reported by path and reason before anything connects —
 * rather than as an obscure handshake failure later.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { fileErrorReason } from "./secrets.ts";

/** Paths of PEM files for one TLS peer, as configured. */
export interface TlsFiles {
  /** CA certificates to trust. */
  ca?: string;
  /** Client certificate (chain). */
  cert?: string;
  /** The client certificate's private key. */
  key?: string;
}

/** The checked contents of {@link TlsFiles}. */
export interface TlsMaterial {
  /** Each CA certificate of the bundle, in PEM. */
  ca?: string[];
  cert?: string;
  key?: string;
}

/** TLS connection options as node:tls and undici name them. */
export interface TlsOptions {
  ca?: string[];
  cert?: string;
  key?: string;
  rejectUnauthorized: true;
}

/**
 * The material as connection options: the CA bundle if given (else the system's CAs are trusted), and the
 * client certificate with its key. Certificates are always verified: there is no option to turn that off,
 * and it is said explicitly, so that nothing in the environment can turn it off either.
 */
export function tlsOptions(tls: TlsMaterial): TlsOptions {
  return {
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    rejectUnauthorized: true,
  };
}

/** Everything wrong with the files, one problem a line, each naming the option and the path. */
export class TlsFileError extends Error {
  override name = "TlsFileError";
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const PRIVATE_KEY_LABELS = new Set(["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]);

/**
 * Reads and checks the files: every CA certificate readable, the client certificate valid now, the key
 * readable, unencrypted and the certificate's own. `option` is the flag prefix for messages ("--kafka").
 * Throws a {@link TlsFileError} naming every problem.
 */
export async function loadTlsFiles(
  files: TlsFiles,
  options: { option: string; readTextFile: (path: string) => Promise<string>; now: Date },
): Promise<TlsMaterial> {
  const problems: string[] = [];
  const read = async (kind: keyof TlsFiles): Promise<string | undefined> => {
    const path = files[kind];
    if (path === undefined) return undefined;
    try {
      return await options.readTextFile(path);
    } catch (error) {
      problems.push(`${options.option}-${kind} ${path}: cannot read it: ${fileErrorReason(error)}`);
      return undefined;
    }
  };
  const [caText, certText, keyText] = [await read("ca"), await read("cert"), await read("key")];
  const material: TlsMaterial = {};
  const report = (kind: keyof TlsFiles, problem: string | undefined) => {
    if (problem !== undefined) problems.push(`${options.option}-${kind} ${files[kind]}: ${problem}`);
  };
  if (caText !== undefined) {
    material.ca = pemBlocks(caText, "CERTIFICATE");
    report("ca", caBundleProblem(material.ca));
  }
  if (certText !== undefined) {
    material.cert = certText;
    report("cert", certificateProblem(certText, options.now));
  }
  if (keyText !== undefined) {
    material.key = keyText;
    report("key", privateKeyProblem(keyText));
  }
  if (
    problems.length === 0 && certText !== undefined && keyText !== undefined && !keyMatches(certText, keyText)
  ) {
    problems.push(
      `${options.option}-key ${files.key} is not the private key of the certificate in ` +
        `${options.option}-cert ${files.cert}`,
    );
  }
  if (problems.length > 0) throw new TlsFileError(problems.join("\n"));
  return material;
}

/** The PEM blocks with the given label, each with its BEGIN and END lines. */
function pemBlocks(text: string, label: string): string[] {
  return [...text.matchAll(PEM_BLOCK)].filter((match) => match[1] === label).map((match) => match[0]);
}

/** Why a CA bundle is of no use, or undefined. */
function caBundleProblem(certificates: string[]): string | undefined {
  if (certificates.length === 0) return "holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
  const unreadable = certificates.findIndex((pem) => parseCertificate(pem) === undefined);
  return unreadable < 0
    ? undefined
    : `certificate ${unreadable + 1} of ${certificates.length} is not readable`;
}

/** Why a client certificate cannot be used now, or undefined. */
function certificateProblem(text: string, now: Date): string | undefined {
  const [first] = pemBlocks(text, "CERTIFICATE");
  if (first === undefined) {
    return /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)
      ? "holds a private key, not a certificate"
      : "holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
  }
  const certificate = parseCertificate(first);
  if (certificate === undefined) return "the certificate is not readable";
  if (now.getTime() > Date.parse(certificate.validTo)) {
    return `the certificate expired on ${certificate.validTo}`;
  }
  if (now.getTime() < Date.parse(certificate.validFrom)) {
    return `the certificate is not valid before ${certificate.validFrom}`;
  }
  return undefined;
}

/** Why a private key cannot be used, or undefined. */
function privateKeyProblem(text: string): string | undefined {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    return "the key is encrypted; eventsink reads unencrypted keys only (decrypt it with " +
      "`openssl pkey -in <encrypted> -out <key>` and protect the file by its permissions or as a systemd credential)";
  }
  const key = privateKeyBlock(text);
  if (key === undefined) {
    return pemBlocks(text, "CERTIFICATE").length > 0
      ? "holds a certificate, not a private key"
      : "holds no PEM private key (-----BEGIN PRIVATE KEY-----)";
  }
  try {
    createPrivateKey(key);
    return undefined;
  } catch {
    return "the private key is not readable";
  }
}

function privateKeyBlock(text: string): string | undefined {
  return [...text.matchAll(PEM_BLOCK)].find((match) => PRIVATE_KEY_LABELS.has(match[1]!))?.[0];
}

function keyMatches(certText: string, keyText: string): boolean {
  const certificate = parseCertificate(pemBlocks(certText, "CERTIFICATE")[0]!);
  return certificate?.checkPrivateKey(createPrivateKey(privateKeyBlock(keyText)!)) ?? false;
}

function parseCertificate(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}
