/**
 * How a service account names the learner it acts for (DESIGN.md §7, §10): a bare value is
 * always the client application's external id; `id:<n>` is Attune's own id.
 */

/** An external id (a plain string, digits too), `{ externalId }`, or Attune's `{ id }`. */
export type LearnerRef = string | { externalId: string } | { id: number };

const ID_PREFIX = "id:";

/** The `X-On-Behalf-Of` value for a learner reference. */
export function onBehalfOf(ref: LearnerRef): string {
  if (typeof ref === "object" && ref !== null && "id" in ref) {
    if (!Number.isSafeInteger(ref.id) || ref.id < 1) {
      throw new TypeError(`An Attune id is a positive integer, not ${String(ref.id)}.`);
    }
    return `${ID_PREFIX}${ref.id}`;
  }
  const externalId = typeof ref === "string" ? ref : ref.externalId;
  if (typeof externalId !== "string" || externalId === "") {
    // An empty header is no header: the request would run as the service account itself.
    throw new TypeError("An external id is a non-empty string.");
  }
  if (externalId.startsWith(ID_PREFIX)) {
    // The server reads this prefix as Attune's id, so such an external id cannot be named.
    throw new TypeError(
      `The external id ${JSON.stringify(externalId)} starts with "${ID_PREFIX}", which ` +
        "X-On-Behalf-Of reserves for Attune ids: name this learner as { id: <attune id> }.",
    );
  }
  if (externalId !== externalId.trim()) {
    throw new TypeError(
      `The external id ${JSON.stringify(externalId)} has surrounding whitespace, which ` +
        "HTTP headers drop.",
    );
  }
  // Header values are bytes: code points above U+00FF and control characters cannot be sent.
  if (/[^\x20-\x7e\xa0-\xff]/.test(externalId)) {
    throw new TypeError(
      `The external id ${JSON.stringify(externalId)} cannot travel in an HTTP header: name ` +
        "this learner as { id: <attune id> }.",
    );
  }
  return externalId;
}
