/**
 * The API's shapes, taken from the generated OpenAPI types (src/schema.ts) so that a change on
 * the server shows up here as a compile error after `npm run generate`.
 */
import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];

/** The JSON body a route answers with a given status. */
type ResponseBody<
  Path extends keyof paths,
  Method extends "get" | "post",
  Status extends number,
> = paths[Path][Method] extends {
  responses: { [S in Status]: { content: { "application/json": infer Body } } };
}
  ? Body
  : never;

/** The JSON body a route takes. */
type RequestBody<Path extends keyof paths, Method extends "post"> = paths[Path][Method] extends {
  requestBody?: { content: { "application/json": infer Body } };
}
  ? Body
  : never;

export type Context = Schemas["ContextEnum"];

/** The answer of the decide call (DESIGN.md §4). */
export type Decision = ResponseBody<"/api/v1/decisions/", "post", 201>;

/** One outcome as `outcomes/` takes it. */
export type OutcomeInput = Extract<RequestBody<"/api/v1/outcomes/", "post">, { event_id: string }>;

/**
 * An outcome as `track()` takes it: `event_id`, the idempotency key, may be left out and is then
 * generated.
 */
export type Outcome = Omit<OutcomeInput, "event_id"> & { event_id?: string };

/** What `outcomes/` answers for a list; `flush()` sums it over its requests. */
export type OutcomeBatchResult = ResponseBody<"/api/v1/outcomes/", "post", 201>;

export type Learner = Schemas["User"];

/** The fields `users/` takes besides `external_id`. */
export type LearnerFields = Omit<Schemas["UserCreateRequest"], "external_id">;

/** `me/prompt-context/` (DESIGN.md §7.1): the learner's adaptation and a fresh decision. */
export type PromptContext = ResponseBody<"/api/v1/me/prompt-context/", "get", 200>;

/** One entry of the error shape (DESIGN.md §7). */
export interface ErrorDetail {
  code: string;
  detail: string;
  attr: string | null;
}

/** The error shape every route answers with: `{"type", "errors": [{"code", "detail", "attr"}]}`. */
export interface ErrorBody {
  type: string;
  errors: ErrorDetail[];
}

// The generated error responses must keep fitting ErrorBody: if the server's shape changes,
// the build fails here instead of AttuneError silently reading the wrong fields.
type Fits<T, Shape> = T extends Shape ? true : false;
type Assert<T extends true> = T;
export type ErrorShapeCheck = [
  Assert<Fits<Schemas["ErrorResponse401"], ErrorBody>>,
  Assert<Fits<Schemas["ErrorResponse403"], ErrorBody>>,
  Assert<Fits<Schemas["ErrorResponse404"], ErrorBody>>,
  Assert<Fits<Schemas["ErrorResponse429"], ErrorBody>>,
  Assert<Fits<Schemas["ErrorResponse500"], ErrorBody>>,
];
