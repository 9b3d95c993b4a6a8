import { AttuneError, isErrorBody } from "./errors.js";
import { type LearnerRef, onBehalfOf } from "./learner.js";
import { type RetryPolicy, backoffMs, isRetryableStatus, retryDelayMs } from "./retry.js";
import type {
  Context,
  Decision,
  Learner,
  LearnerFields,
  Outcome,
  OutcomeBatchResult,
  OutcomeInput,
  PromptContext,
} from "./types.js";

/** `outcomes/` takes at most this many outcomes per request (DESIGN.md §7). */
export const MAX_OUTCOMES_PER_REQUEST = 1000;

export interface AttuneOptions {
  /** The server's root, e.g. `https://attune.example.com` (routes are under /api/v1/). */
  baseUrl: string;
  /** A token from `POST /api/v1/auth/token/`, usually a service account's. */
  token: string;
  /** The fetch to use; the platform's by default. */
  fetch?: typeof fetch;
  /** Further attempts after a 5xx, a 429 or a network error (default 3). */
  retries?: number;
  /** The first retry's backoff in ms (default 250); each further one doubles. */
  backoffMs?: number;
  /** The cap of one backoff in ms (default 10,000). */
  maxBackoffMs?: number;
  /** The longest Retry-After waited for, in ms (default 60,000); a longer one is thrown. */
  maxRetryAfterMs?: number;
  /** Each attempt's time limit in ms (default 30,000). */
  timeoutMs?: number;
  /** Queued outcomes that start a flush in the background (default 100). */
  flushAt?: number;
  /**
   * Where a background flush's failure goes. Without it, the failure is thrown by the next
   * `flush()`.
   */
  onFlushError?: (error: unknown) => void;
}

export interface CallOptions {
  /** The learner this call acts for, instead of the client's own (see `forLearner`). */
  learner?: LearnerRef;
  signal?: AbortSignal;
}

export interface FlushResult {
  /** Outcomes stored by this flush. */
  created: number;
  /** Outcomes the server already had (their event_id was stored before). */
  duplicates: number;
  /** The requests it took. */
  requests: number;
}

interface Queued {
  /** The X-On-Behalf-Of value, or "" for the caller itself. */
  learner: string;
  outcome: OutcomeInput;
}

interface RequestOptions {
  learner?: string | undefined;
  query?: Record<string, string>;
  body?: unknown;
  signal?: AbortSignal | undefined;
}

/** The transport and the outcome queue, shared by a client and its `forLearner` views. */
class Core {
  readonly baseUrl: URL;
  readonly token: string;
  readonly fetch: typeof fetch;
  readonly policy: RetryPolicy;
  readonly timeoutMs: number;
  readonly flushAt: number;
  readonly onFlushError: ((error: unknown) => void) | undefined;
  queue: Queued[] = [];
  /** The flush in progress, if any: flushes run one after the other. */
  flushing: Promise<unknown> = Promise.resolve();
  /** A background flush's failure, for the next flush() when nobody listens. */
  pendingError: unknown = undefined;
  /** Whether a background flush is waiting or running: one is enough. */
  backgroundFlush = false;

  constructor(options: AttuneOptions) {
    if (!options.baseUrl) throw new TypeError("baseUrl is required.");
    if (!options.token) throw new TypeError("token is required.");
    this.baseUrl = new URL(options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`);
    this.token = options.token;
    const platformFetch = globalThis.fetch;
    this.fetch = options.fetch ?? ((input, init) => platformFetch(input, init));
    this.policy = {
      retries: nonNegative("retries", options.retries ?? 3),
      backoffMs: nonNegative("backoffMs", options.backoffMs ?? 250),
      maxBackoffMs: nonNegative("maxBackoffMs", options.maxBackoffMs ?? 10_000),
      maxRetryAfterMs: nonNegative("maxRetryAfterMs", options.maxRetryAfterMs ?? 60_000),
    };
    this.timeoutMs = nonNegative("timeoutMs", options.timeoutMs ?? 30_000);
    this.flushAt = Math.max(1, nonNegative("flushAt", options.flushAt ?? 100));
    this.onFlushError = options.onFlushError;
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(path, this.baseUrl);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      url.searchParams.set(name, value);
    }
    const headers: Record<string, string> = {
      Accept: "application/json",
      Authorization: `Token ${this.token}`,
    };
    if (options.learner) headers["X-On-Behalf-Of"] = options.learner;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      // Serialised once: every retry sends the very same bytes (and the same event_ids).
      body = JSON.stringify(options.body);
    }

    for (let retry = 0; ; retry++) {
      const canRetry = retry < this.policy.retries;
      let answer: Answer;
      try {
        answer = await this.attempt(url, {
          method,
          headers,
          ...(body === undefined ? {} : { body }),
          signal: this.attemptSignal(options.signal),
        });
      } catch (error) {
        if (options.signal?.aborted) throw error; // the caller gave up: not ours to retry
        if (!canRetry) {
          throw new AttuneError({
            status: 0,
            type: "network_error",
            method,
            url: url.href,
            cause: error,
          });
        }
        await sleep(backoffMs(retry, this.policy, Math.random), options.signal);
        continue;
      }

      if (answer.status >= 200 && answer.status < 300) {
        if (!answer.text) return undefined as T;
        try {
          return JSON.parse(answer.text) as T;
        } catch (error) {
          throw new AttuneError({
            status: answer.status,
            type: "http_error",
            body: answer.text,
            method,
            url: url.href,
            cause: error,
          });
        }
      }
      const delay =
        canRetry && isRetryableStatus(answer.status)
          ? retryDelayMs(retry, answer.retryAfter, this.policy, Date.now(), Math.random)
          : undefined;
      if (delay === undefined) throw errorFrom(answer, method, url.href);
      await sleep(delay, options.signal);
    }
  }

  /** One attempt, body read included: a connection lost mid-answer is a network error too. */
  private async attempt(url: URL, init: RequestInit): Promise<Answer> {
    const response = await this.fetch(url, init);
    return {
      status: response.status,
      retryAfter: response.headers.get("Retry-After"),
      text: await response.text(),
    };
  }

  private attemptSignal(caller: AbortSignal | undefined): AbortSignal | null {
    const timeout = this.timeoutMs > 0 ? AbortSignal.timeout(this.timeoutMs) : undefined;
    if (caller && timeout) return AbortSignal.any([caller, timeout]);
    return caller ?? timeout ?? null;
  }

  track(learner: string, outcome: Outcome): string {
    const eventId = outcome.event_id ?? crypto.randomUUID();
    this.queue.push({ learner, outcome: { ...outcome, event_id: eventId } as OutcomeInput });
    if (this.queue.length >= this.flushAt && !this.backgroundFlush) {
      this.backgroundFlush = true;
      this.flush(false)
        .catch((error: unknown) => {
          if (this.onFlushError) this.onFlushError(error);
          else this.pendingError ??= error;
        })
        .finally(() => {
          this.backgroundFlush = false;
        });
    }
    return eventId;
  }

  flush(explicit: boolean): Promise<FlushResult> {
    const run = this.flushing.then(async () => {
      if (explicit && this.pendingError !== undefined) {
        const error = this.pendingError;
        this.pendingError = undefined;
        throw error;
      }
      return this.sendQueued();
    });
    this.flushing = run.catch(() => undefined);
    return run;
  }

  /**
   * Sends what is queued now, one request per learner and ≤ 1000 outcomes. A batch that still
   * fails after the retries goes back to the queue when the failure may pass (5xx, 429,
   * network: ingest is idempotent by event_id, so re-sending it later is safe) and is dropped
   * when the server rejected it (other 4xx: the same batch would be rejected again); the
   * batches not yet sent go back to the queue either way.
   */
  private async sendQueued(): Promise<FlushResult> {
    const taken = this.queue;
    this.queue = [];
    const batches = batchesOf(taken);
    const result: FlushResult = { created: 0, duplicates: 0, requests: 0 };
    for (const [index, batch] of batches.entries()) {
      try {
        const answer = await this.request<OutcomeBatchResult>("POST", "api/v1/outcomes/", {
          learner: batch.learner,
          body: batch.outcomes,
        });
        result.requests += 1;
        result.created += answer.created;
        result.duplicates += answer.duplicates;
      } catch (error) {
        const unsent = batches.slice(index + 1).flatMap(queuedOf);
        const transient =
          !(error instanceof AttuneError) || error.status === 0 || isRetryableStatus(error.status);
        this.queue = [...(transient ? queuedOf(batch) : []), ...unsent, ...this.queue];
        throw error instanceof AttuneError && !transient
          ? error.withOutcomes(batch.outcomes)
          : error;
      }
    }
    return result;
  }
}

interface Batch {
  learner: string;
  outcomes: OutcomeInput[];
}

/** Queued outcomes grouped by learner in order of first appearance, ≤ 1000 a batch. */
function batchesOf(queued: readonly Queued[]): Batch[] {
  const byLearner = new Map<string, OutcomeInput[]>();
  for (const { learner, outcome } of queued) {
    const outcomes = byLearner.get(learner);
    if (outcomes) outcomes.push(outcome);
    else byLearner.set(learner, [outcome]);
  }
  const batches: Batch[] = [];
  for (const [learner, outcomes] of byLearner) {
    for (let start = 0; start < outcomes.length; start += MAX_OUTCOMES_PER_REQUEST) {
      batches.push({ learner, outcomes: outcomes.slice(start, start + MAX_OUTCOMES_PER_REQUEST) });
    }
  }
  return batches;
}

function queuedOf(batch: Batch): Queued[] {
  return batch.outcomes.map((outcome) => ({ learner: batch.learner, outcome }));
}

/** An answer as the retry loop needs it. */
interface Answer {
  status: number;
  retryAfter: string | null;
  text: string;
}

function errorFrom(answer: Answer, method: string, url: string): AttuneError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.text);
  } catch {
    parsed = undefined;
  }
  if (isErrorBody(parsed)) {
    return new AttuneError({
      status: answer.status,
      type: parsed.type,
      errors: parsed.errors,
      method,
      url,
    });
  }
  return new AttuneError({
    status: answer.status,
    type: "http_error",
    body: answer.text,
    method,
    url,
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a non-negative number, not ${value}.`);
  }
  return value;
}

/** Marks the options of a `forLearner` view; not exported, so only this module makes views. */
const VIEW = Symbol("view");

interface View {
  core: Core;
  learner: string;
}

/**
 * A client of Attune's API.
 *
 * ```ts
 * const attune = new Attune({ baseUrl: "https://attune.example.com", token });
 * const learner = attune.forLearner("user-42");      // X-On-Behalf-Of: user-42
 * const decision = await learner.decide("MISSION");
 * learner.track({ decision: decision.id, outcome_type: "MISSION_COMPLETED", completion_rate: 1 });
 * await attune.flush();
 * ```
 */
export class Attune {
  readonly #core: Core;
  readonly #learner: string | undefined;

  constructor(options: AttuneOptions) {
    const view = (options as { [VIEW]?: View })[VIEW];
    this.#core = view ? view.core : new Core(options);
    this.#learner = view?.learner;
  }

  /**
   * This client acting for a learner: every call sends `X-On-Behalf-Of`. A string is the
   * learner's external id (digits too); `{ id }` is Attune's id. The view shares the
   * client's connection settings and outcome queue.
   */
  forLearner(learner: LearnerRef): Attune {
    const view: View = { core: this.#core, learner: onBehalfOf(learner) };
    return new Attune({ baseUrl: "", token: "", [VIEW]: view } as AttuneOptions);
  }

  /** The X-On-Behalf-Of value this client sends, if it acts for a learner. */
  get learner(): string | undefined {
    return this.#learner;
  }

  /** Which strategy to use now in this context (DESIGN.md §4): `POST decisions/`. */
  decide(context: Context, options: CallOptions = {}): Promise<Decision> {
    return this.#core.request<Decision>("POST", "api/v1/decisions/", {
      learner: this.#learnerFor(options),
      body: { context },
      signal: options.signal,
    });
  }

  /**
   * Queues an outcome and answers its event_id, a fresh UUID unless the outcome names one.
   * Queued outcomes are sent by `flush()`, and in the background once `flushAt` are queued.
   */
  track(outcome: Outcome, options: Pick<CallOptions, "learner"> = {}): string {
    return this.#core.track(this.#learnerFor(options) ?? "", outcome);
  }

  /**
   * Sends every queued outcome, whichever view queued it: one request per learner and 1000
   * outcomes. Outcomes whose request failed for a passing reason (5xx, 429, network) stay
   * queued with their event_ids for the next flush; a batch the server rejected (other 4xx)
   * is dropped and named by the AttuneError's `outcomes`.
   */
  flush(): Promise<FlushResult> {
    return this.#core.flush(true);
  }

  /** How many outcomes wait to be sent. */
  get queued(): number {
    return this.#core.queue.length;
  }

  /**
   * What a content generator needs to adapt text to the learner (DESIGN.md §7.1):
   * `GET me/prompt-context/?context=…`. It is a decision, logged as one.
   */
  promptContext(context: Context, options: CallOptions = {}): Promise<PromptContext> {
    return this.#core.request<PromptContext>("GET", "api/v1/me/prompt-context/", {
      learner: this.#learnerFor(options),
      query: { context },
      signal: options.signal,
    });
  }

  /**
   * Creates a learner with the client application's id for it (`POST users/`). A taken
   * external id is an AttuneError 409. Always sent as the service account itself.
   */
  createLearner(
    externalId: string,
    fields: LearnerFields = {},
    options: Pick<CallOptions, "signal"> = {},
  ): Promise<Learner> {
    return this.#core.request<Learner>("POST", "api/v1/users/", {
      body: { ...fields, external_id: externalId },
      signal: options.signal,
    });
  }

  /** The learner with this external id, or null (`GET users/?external_id=…`). */
  async findLearner(
    externalId: string,
    options: Pick<CallOptions, "signal"> = {},
  ): Promise<Learner | null> {
    const page = await this.#core.request<{ results: Learner[] }>("GET", "api/v1/users/", {
      query: { external_id: externalId },
      signal: options.signal,
    });
    return page.results[0] ?? null;
  }

  #learnerFor(options: Pick<CallOptions, "learner">): string | undefined {
    return options.learner === undefined ? this.#learner : onBehalfOf(options.learner);
  }
}
