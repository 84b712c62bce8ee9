import { formatDuration } from "../duration.ts";
import { formatAddress } from "../operations/endpoints.ts";
import { REDACTED } from "../outward.ts";
import { describeSecretSource } from "../security/secrets.ts";
import type { Config } from "./parse.ts";

/** The effective configuration as log fields: secrets as "[redacted]" with their source, header values left out. */
export function describeConfig(config: Config): Record<string, string | number | boolean | undefined> {
  const auth = config.eventstoreAuth;
  return {
    brokers: config.brokers.join(","),
    topic: config.topic,
    group: config.group,
    clientId: config.clientId,
    eventstoreUrl: config.eventstoreUrl,
    fromBeginning: config.fromBeginning,
    onRejected: config.rejected.policy,
    deadLetterTopic: config.rejected.deadLetterTopic,
    retryInitial: formatDuration(config.retry.initialMs),
    retryMax: formatDuration(config.retry.maxMs),
    retryGiveUp: config.retry.giveUpMs === undefined ? "never" : formatDuration(config.retry.giveUpMs),
    poisonAfter: config.retry.poison === undefined
      ? "off"
      : `${formatDuration(config.retry.poison.afterMs)} and ${config.retry.poison.attempts} attempts`,
    responseWait: config.retry.responseWaitMs === undefined
      ? "off"
      : formatDuration(config.retry.responseWaitMs),
    requestTimeout: formatDuration(config.requestTimeoutMs),
    ordering: config.ordering,
    maxInFlight: config.maxInFlight,
    http2: config.http2,
    shutdownGrace: formatDuration(config.shutdownGraceMs),
    eventstoreAuth: auth.kind,
    eventstoreToken: auth.kind === "token" ? describeSecretSource(auth.token) : undefined,
    oauthTokenUrl: auth.kind === "oauth2" && "tokenUrl" in auth.endpoint ? auth.endpoint.tokenUrl : undefined,
    oauthDiscoveryUrl: auth.kind === "oauth2" && "discoveryUrl" in auth.endpoint
      ? auth.endpoint.discoveryUrl
      : undefined,
    oauthClientId: auth.kind === "oauth2" ? auth.clientId : undefined,
    oauthClientSecret: auth.kind === "oauth2" ? describeSecretSource(auth.clientSecret) : undefined,
    oauthScope: auth.kind === "oauth2" ? auth.scope : undefined,
    oauthClientAuth: auth.kind === "oauth2" ? auth.clientAuth : undefined,
    eventstoreHeaders: Object.keys(config.eventstoreHeaders).map((name) => `${name}=${REDACTED}`).join(",") ||
      undefined,
    eventstoreCa: config.eventstoreTls.ca,
    eventstoreCert: config.eventstoreTls.cert,
    eventstoreKey: config.eventstoreTls.key,
    kafkaTls: config.kafkaTls !== undefined,
    kafkaCa: config.kafkaTls?.ca,
    kafkaCert: config.kafkaTls?.cert,
    kafkaKey: config.kafkaTls?.key,
    kafkaSaslMechanism: config.kafkaSasl?.mechanism,
    kafkaSaslUsername: config.kafkaSasl?.username,
    kafkaSaslPassword: describeSecretSource(config.kafkaSasl?.password),
    httpListen: config.httpListen === undefined ? "off" : formatAddress(config.httpListen),
    from: config.replay.from?.kind,
    untilEnd: config.replay.untilEnd,
    dryRun: config.replay.dryRun,
    keepGroup: config.replay.keepGroup,
    maxRate: config.maxRate,
  };
}
