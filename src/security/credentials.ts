/**
 * Start-up reading of everything secret or file-based the configuration points at: secrets from the
 * environment, files and systemd credentials, and the TLS certificates and keys. Every problem is reported
 * at once, by path and reason, before anything connects.
 */
import { isSecureOrLocal } from "./transport.ts";
import { base64Utf8, formEncode, type Redactor } from "../outward.ts";
import { readSecret, type Secret, SecretError, type SecretSource, type SecretSpec } from "./secrets.ts";
import { loadTlsFiles, TlsFileError, type TlsFiles, type TlsMaterial } from "./tls_files.ts";

/** How eventsink authenticates its client to the OAuth2 token endpoint (RFC 6749 §2.3.1). */
export type OAuthClientAuth = "client_secret_post" | "client_secret_basic";
export const OAUTH_CLIENT_AUTHS: readonly OAuthClientAuth[] = ["client_secret_post", "client_secret_basic"];

/** OAuth2 client credentials for the EventStore. */
export interface OAuth2Settings {
  /** The token endpoint, or the OpenID Connect discovery document that names it. */
  endpoint: { tokenUrl: string } | { discoveryUrl: string };
  clientId: string;
  clientSecret: SecretSource;
  scope: string | undefined;
  clientAuth: OAuthClientAuth;
}

/** The credentials eventsink shows the EventStore. */
export type EventStoreAuth =
  | { kind: "none" }
  /** A static bearer token (a systemd credential source may turn out not to exist: then none). */
  | { kind: "token"; token: SecretSource }
  | ({ kind: "oauth2" } & OAuth2Settings);

/** SASL mechanisms eventsink speaks to Kafka, always over TLS. */
export type SaslMechanism = "plain" | "scram-sha-256" | "scram-sha-512";
export const SASL_MECHANISMS: readonly SaslMechanism[] = ["plain", "scram-sha-256", "scram-sha-512"];

/** SASL authentication to Kafka. */
export interface KafkaSasl {
  mechanism: SaslMechanism;
  username: string;
  password: SecretSource;
}

// Secrets are never flag values (`ps` and shell history would show them): each comes from the environment,
// from the file its --…-file option names, or from the systemd credential of its name.
export const SECRETS = {
  oauthClientSecret: {
    what: "the OAuth2 client secret",
    env: ["EVENTSINK_OAUTH_CLIENT_SECRET", "AZURE_APP_CLIENT_SECRET"],
    fileOption: "oauth-client-secret-file",
    credential: "oauth-client-secret",
  },
  eventstoreToken: {
    what: "the EventStore bearer token",
    env: ["EVENTSINK_EVENTSTORE_TOKEN"],
    fileOption: "eventstore-token-file",
    credential: "eventstore-token",
  },
  kafkaSaslPassword: {
    what: "the Kafka SASL password",
    env: ["EVENTSINK_KAFKA_SASL_PASSWORD"],
    fileOption: "kafka-sasl-password-file",
    credential: "kafka-sasl-password",
  },
} as const satisfies Record<string, SecretSpec>;

/** The options loading reads: what to authenticate with, and which TLS files to load. */
export interface CredentialOptions {
  /** Credentials go only to https (or localhost). */
  eventstoreUrl: string;
  eventstoreAuth: EventStoreAuth;
  /** Extra headers (API keys): credentials too, and masked like them. */
  eventstoreHeaders: Record<string, string>;
  eventstoreTls: TlsFiles;
  /** Undefined: plaintext to Kafka. */
  kafkaTls: TlsFiles | undefined;
  kafkaSasl: KafkaSasl | undefined;
}

/** The EventStore credentials with their secrets read. */
export type EventStoreCredentials =
  | { kind: "none" }
  | { kind: "token"; token: Secret }
  | ({ kind: "oauth2" } & Omit<OAuth2Settings, "clientSecret"> & { clientSecret: Secret });

/** What eventsink read at start-up. */
export interface Credentials {
  eventstoreAuth: EventStoreCredentials;
  eventstoreTls: TlsMaterial;
  kafkaTls: TlsMaterial | undefined;
  kafkaSasl: (Omit<KafkaSasl, "password"> & { password: Secret }) | undefined;
}

/**
 * The value of a Basic authorization for an OAuth2 client (RFC 6749 §2.3.1: id and secret are form-encoded
 * before they are joined and base64-encoded).
 */
export function basicCredentials(clientId: string, clientSecret: string): string {
  return base64Utf8(`${formEncode(clientId)}:${formEncode(clientSecret)}`);
}

/** Everything that could not be read or used, one problem a line; a configuration error (exit 2). */
export class CredentialsError extends Error {
  override name = "CredentialsError";
}

/** What loading needs from the outside. */
export interface LoadOptions {
  readTextFile: (path: string) => Promise<string>;
  now: Date;
  /** Learns every secret read, to mask it in log lines. */
  redactor: Redactor;
}

/** Reads the secrets and TLS files the configuration names; throws a {@link CredentialsError} listing every problem. */
export async function loadCredentials(config: CredentialOptions, options: LoadOptions): Promise<Credentials> {
  const problems: string[] = [];
  const secret = async (spec: SecretSpec, source: SecretSource, required: boolean) => {
    try {
      const value = await readSecret(spec, source, { required, readTextFile: options.readTextFile });
      if (value !== undefined) options.redactor.add(value.reveal());
      return value;
    } catch (error) {
      if (!(error instanceof SecretError)) throw error;
      problems.push(error.message);
      return undefined;
    }
  };
  const tls = async (files: TlsFiles, option: string) => {
    try {
      return await loadTlsFiles(files, { option, readTextFile: options.readTextFile, now: options.now });
    } catch (error) {
      if (!(error instanceof TlsFileError)) throw error;
      problems.push(error.message);
      return {};
    }
  };

  const eventstoreAuth = await readAuth(config.eventstoreAuth, secret);
  if (eventstoreAuth.kind === "oauth2") {
    options.redactor.add(basicCredentials(eventstoreAuth.clientId, eventstoreAuth.clientSecret.reveal()));
  }
  const headerValues = Object.values(config.eventstoreHeaders);
  for (const value of headerValues) options.redactor.add(value);
  const sent = [
    ...(eventstoreAuth.kind === "none" ? [] : ["credentials"]),
    ...(headerValues.length > 0 ? ["--eventstore-headers"] : []),
  ];
  if (sent.length > 0 && !isSecureOrLocal(config.eventstoreUrl)) {
    problems.push(
      `--eventstore-url must be https when eventsink sends ${sent.join(" or ")} (http only to localhost); ` +
        `got "${config.eventstoreUrl}"`,
    );
  }
  const eventstoreTls = await tls(config.eventstoreTls, "--eventstore");
  const kafkaTls = config.kafkaTls && await tls(config.kafkaTls, "--kafka");
  const sasl = config.kafkaSasl;
  const password = sasl && await secret(SECRETS.kafkaSaslPassword, sasl.password, true);
  if (problems.length > 0) throw new CredentialsError(problems.join("\n"));
  return {
    eventstoreAuth,
    eventstoreTls,
    kafkaTls,
    kafkaSasl: sasl && { ...sasl, password: password! },
  };
}

async function readAuth(
  auth: EventStoreAuth,
  secret: (spec: SecretSpec, source: SecretSource, required: boolean) => Promise<Secret | undefined>,
): Promise<EventStoreCredentials> {
  switch (auth.kind) {
    case "none":
      return auth;
    case "token": {
      // A systemd credential that is not there means no static token: that source is only a candidate.
      const token = await secret(SECRETS.eventstoreToken, auth.token, false);
      return token === undefined ? { kind: "none" } : { kind: "token", token };
    }
    case "oauth2": {
      const clientSecret = await secret(SECRETS.oauthClientSecret, auth.clientSecret, true);
      return { ...auth, clientSecret: clientSecret! };
    }
  }
}
