import assert from "node:assert/strict";
import { errorChainText, explainTlsFailure } from "./tls_errors.ts";

const OPTIONS = { ca: "--eventstore-ca", cert: "--eventstore-cert" };

Deno.test("tls errors: https to a port that speaks plain HTTP is named as such", () => {
  const detail = "error sending request for url (https://127.0.0.1:8080/fhir/4.0/Bundle?_count=1): client " +
    "error (Connect): received corrupt message of type InvalidContentType";
  assert.equal(
    explainTlsFailure(detail, OPTIONS),
    "TLS: the server on that port speaks plain HTTP, not TLS: use https only if the server does TLS " +
      `(check the URL's scheme and port) (${detail})`,
  );
});

Deno.test("tls errors: certificate failures point at the options to check; other failures are not TLS", () => {
  assert.match(
    explainTlsFailure("invalid peer certificate: UnknownIssuer", OPTIONS)!,
    /check --eventstore-ca\)/,
  );
  assert.match(explainTlsFailure("received fatal alert: CertificateRequired", OPTIONS)!, /--eventstore-cert/);
  assert.equal(explainTlsFailure("Connection refused (os error 111)", OPTIONS), undefined);
});

Deno.test("errorChainText: a cause that repeats its wrapper's message is said once", () => {
  const cause = new Error("Connection error: connect ECONNREFUSED 127.0.0.1:9");
  const wrapper = new Error("Connection error: connect ECONNREFUSED 127.0.0.1:9", { cause });
  assert.equal(errorChainText(wrapper), "Connection error: connect ECONNREFUSED 127.0.0.1:9");
  const other = new Error("Not connected", { cause });
  assert.equal(errorChainText(other), "Not connected: Connection error: connect ECONNREFUSED 127.0.0.1:9");
});
