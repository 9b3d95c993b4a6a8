import type { ErrorBody, ErrorDetail, OutcomeInput } from "./types.js";

/**
 * A request Attune refused or could not answer.
 *
 * `status` is the HTTP status, or 0 when no answer arrived (network error, timeout); `type` and
 * `errors` are the server's error body (`{"type", "errors": [{"code", "detail", "attr"}]}`),
 * or `network_error` / `http_error` with no entries when there was no such body.
 */
export class AttuneError extends Error {
  override readonly name = "AttuneError";
  readonly status: number;
  readonly type: string;
  readonly errors: readonly ErrorDetail[];
  /** The answer's text when it was not the error shape (a proxy's HTML page, say). */
  readonly body: string | undefined;
  readonly method: string;
  readonly url: string;
  /** For a rejected outcome batch: the outcomes it held. They are no longer queued. */
  readonly outcomes: readonly OutcomeInput[] | undefined;

  constructor(init: {
    status: number;
    type: string;
    errors?: readonly ErrorDetail[];
    body?: string;
    method: string;
    url: string;
    outcomes?: readonly OutcomeInput[];
    cause?: unknown;
  }) {
    const errors = init.errors ?? [];
    const cause = init.cause instanceof Error ? init.cause : undefined;
    const summary = errors.length
      ? errors.map((e) => (e.attr ? `${e.attr}: ${e.detail}` : e.detail)).join("; ")
      : cause
        ? `${init.type} (${cause.message})`
        : init.type;
    super(`${init.method} ${init.url} → ${init.status || "no answer"}: ${summary}`, {
      cause: init.cause,
    });
    this.status = init.status;
    this.type = init.type;
    this.errors = errors;
    this.body = init.body;
    this.method = init.method;
    this.url = init.url;
    this.outcomes = init.outcomes;
  }

  /** The first error's code (`not_found`, `learner_required`, …), if the server gave one. */
  get code(): string | undefined {
    return this.errors[0]?.code;
  }

  /** A copy of this error that names the rejected outcomes. */
  withOutcomes(outcomes: readonly OutcomeInput[]): AttuneError {
    return new AttuneError({
      status: this.status,
      type: this.type,
      errors: this.errors,
      ...(this.body === undefined ? {} : { body: this.body }),
      method: this.method,
      url: this.url,
      outcomes,
      cause: this.cause,
    });
  }
}

export function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== "object" || value === null) return false;
  const { type, errors } = value as Record<string, unknown>;
  return (
    typeof type === "string" &&
    Array.isArray(errors) &&
    errors.every(
      (e) =>
        typeof e === "object" &&
        e !== null &&
        typeof (e as ErrorDetail).code === "string" &&
        typeof (e as ErrorDetail).detail === "string",
    )
  );
}
