export {
  Attune,
  MAX_OUTCOMES_PER_REQUEST,
  type AttuneOptions,
  type CallOptions,
  type FlushResult,
} from "./client.js";
export { AttuneError } from "./errors.js";
export { type LearnerRef, onBehalfOf } from "./learner.js";
export type {
  Context,
  Decision,
  ErrorBody,
  ErrorDetail,
  Learner,
  LearnerFields,
  Outcome,
  OutcomeBatchResult,
  OutcomeInput,
  PromptContext,
} from "./types.js";
export type { components, paths } from "./schema.js";
