/**
 * Start-up reading of everything secret or file-based the configuration points at: secrets from the
 * environment, files and systemd credentials, and the TLS certificates and keys. Every problem is reported
 * at once, by path and reason, before anything connects.
 */
import {
  type Config,
  type EventStoreAuth,
  type KafkaSasl,
  type OAuth2Settings,
  SECRETS,
} from "../config/parse.ts";
import { isSecureOrLocal } from "./transport.ts";
import {
  readSecret,
  type Redactor,
  type Secret,
  SecretError,
  type SecretSource,
  type SecretSpec,
} from "./secrets.ts";
import { loadTlsFiles, TlsFileError, type TlsMaterial } from "./tls_files.ts";

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
export async function loadCredentials(config: Config, options: LoadOptions): Promise<Credentials> {
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
  const tls = async (files: Config["eventstoreTls"], option: string) => {
    try {
      return await loadTlsFiles(files, { option, readTextFile: options.readTextFile, now: options.now });
    } catch (error) {
      if (!(error instanceof TlsFileError)) throw error;
      problems.push(error.message);
      return {};
    }
  };

  const eventstoreAuth = await readAuth(config.eventstoreAuth, secret);
  if (eventstoreAuth.kind !== "none" && !isSecureOrLocal(config.eventstoreUrl)) {
    problems.push(
      `--eventstore-url must be https when eventsink sends credentials (http only to localhost); got ` +
        `"${config.eventstoreUrl}"`,
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
