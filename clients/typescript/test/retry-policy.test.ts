import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffMs, isRetryableStatus, retryAfterMs, retryDelayMs } from "../src/retry.js";

const policy = { retries: 3, backoffMs: 100, maxBackoffMs: 1000, maxRetryAfterMs: 5000 };

test("5xx and 429 are retried, other statuses are not", () => {
  assert.deepEqual([429, 500, 502, 503, 599].map(isRetryableStatus), [
    true,
    true,
    true,
    true,
    true,
  ]);
  assert.deepEqual([200, 400, 401, 403, 404, 409, 413, 422, 600].map(isRetryableStatus), [
    false,
    false,
    false,
    false,
    false,
    false,
    false,
    false,
    false,
  ]);
});

test("Retry-After is read as seconds or as an HTTP date", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(retryAfterMs("7", now), 7000);
  assert.equal(retryAfterMs("Thu, 01 Jan 2026 00:00:03 GMT", now), 3000);
  assert.equal(retryAfterMs("Wed, 31 Dec 2025 23:59:00 GMT", now), 0);
  assert.equal(retryAfterMs("soon", now), undefined);
  assert.equal(retryAfterMs(null, now), undefined);
});

test("the backoff doubles up to its cap, jittered within the upper half of each step", () => {
  const low = [0, 1, 2, 3, 4].map((retry) => backoffMs(retry, policy, () => 0));
  const high = [0, 1, 2, 3, 4].map((retry) => backoffMs(retry, policy, () => 1));
  assert.deepEqual(low, [50, 100, 200, 400, 500]);
  assert.deepEqual(high, [100, 200, 400, 800, 1000]);
});

test("a Retry-After replaces the backoff unless it is longer than allowed", () => {
  assert.equal(
    retryDelayMs(0, "2", policy, 0, () => 0.5),
    2000,
  );
  assert.equal(
    retryDelayMs(0, "6", policy, 0, () => 0.5),
    undefined,
  );
  assert.equal(
    retryDelayMs(1, null, policy, 0, () => 0.5),
    150,
  );
});
