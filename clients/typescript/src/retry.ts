/**
 * When to try a request again and how long to wait first. Pure: the clock and the random
 * source are arguments.
 */

export interface RetryPolicy {
  /** Further attempts after the first one. */
  retries: number;
  /** The first backoff; each further one doubles, up to maxBackoffMs. */
  backoffMs: number;
  maxBackoffMs: number;
  /** A Retry-After longer than this is not waited for: the error is thrown at once. */
  maxRetryAfterMs: number;
}

/** 5xx and 429 are worth another attempt; any other 4xx would be answered the same again. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

/**
 * A Retry-After header in milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Exponential backoff with "equal jitter": half of the capped exponential step, plus a random
 * share of the other half, so that clients that failed together do not retry together while
 * every wait stays at least half the step.
 */
export function backoffMs(retry: number, policy: RetryPolicy, random: () => number): number {
  const step = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** retry);
  return step / 2 + random() * (step / 2);
}

/**
 * How long to wait before retry number `retry` (0 for the first), or undefined when the
 * server asked for a longer wait than the policy allows.
 */
export function retryDelayMs(
  retry: number,
  retryAfter: string | null,
  policy: RetryPolicy,
  now: number,
  random: () => number,
): number | undefined {
  const asked = retryAfterMs(retryAfter, now);
  if (asked === undefined) return backoffMs(retry, policy, random);
  return asked <= policy.maxRetryAfterMs ? asked : undefined;
}
