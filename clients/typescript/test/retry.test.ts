import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import {
  Attune,
  type AttuneOptions,
  AttuneError,
  type Context,
  type Outcome,
} from "../src/index.js";
import { FlakyProxy } from "./support/flaky-proxy.js";
import { ATTUNE_TOKEN, newLearner, storedOutcomeEventIds } from "./support/live.js";

let proxy: FlakyProxy;
let learner: string;

before(async () => {
  proxy = await FlakyProxy.start();
  learner = (await newLearner("retry")).externalId;
});
after(() => proxy.close());
beforeEach(() => {
  proxy.received.length = 0;
  proxy.script();
});

/** A client of the live server through the proxy, acting for the test's learner. */
function throughProxy(options: Partial<AttuneOptions> = {}): Attune {
  return new Attune({
    baseUrl: proxy.url,
    token: ATTUNE_TOKEN,
    backoffMs: 5,
    ...options,
  }).forLearner(learner);
}

const outcome: Outcome = {
  context: "MISSION",
  outcome_type: "MISSION_COMPLETED",
  performance_score: 0.6,
};

test("a 503 twice is retried until the live server answers", async () => {
  proxy.script({ answer: 503 }, { answer: 503 });

  const decision = await throughProxy().decide("MISSION");

  assert.equal(decision.context, "MISSION");
  assert.equal(proxy.received.length, 3);
  assert.ok(proxy.received.every((r) => r.body === JSON.stringify({ context: "MISSION" })));
});

test("a 429 is retried after the wait its Retry-After asks for", async () => {
  proxy.script({ answer: 429, headers: { "Retry-After": "1" }, body: throttled() });

  const decision = await throughProxy({ backoffMs: 1 }).decide("MISSION");

  assert.equal(decision.context, "MISSION");
  assert.equal(proxy.received.length, 2);
  const [first, second] = proxy.received;
  // The backoff alone would be about a millisecond: only Retry-After explains a second.
  const waited = (second?.at ?? 0) - (first?.at ?? 0);
  assert.ok(waited >= 950, `retried after ${waited.toFixed(0)} ms`);
});

test("a Retry-After longer than maxRetryAfterMs is thrown at once", async () => {
  proxy.script({ answer: 429, headers: { "Retry-After": "120" }, body: throttled() });

  await assert.rejects(throughProxy().decide("MISSION"), (error: unknown) => {
    assert.ok(error instanceof AttuneError);
    assert.equal(error.status, 429);
    assert.equal(error.code, "throttled");
    return true;
  });
  assert.equal(proxy.received.length, 1);
});

test("a dropped connection is retried", async () => {
  proxy.script({ drop: true }, { drop: true });

  const decision = await throughProxy().decide("SESSION");

  assert.equal(decision.context, "SESSION");
  assert.equal(proxy.received.length, 3);
});

test("a 400 from the live server is not retried", async () => {
  await assert.rejects(throughProxy().decide("HOMEWORK" as Context), (error: unknown) => {
    assert.ok(error instanceof AttuneError);
    assert.equal(error.status, 400);
    assert.equal(error.errors[0]?.attr, "context");
    return true;
  });
  assert.equal(proxy.received.length, 1);
});

test("when the retries run out the last answer is thrown, with a body that is not the error shape kept", async () => {
  proxy.script({ answer: 503 }, { answer: 503 }, { answer: 503 }, { forwardThenAnswer: 502 });

  await assert.rejects(throughProxy({ retries: 3 }).decide("MISSION"), (error: unknown) => {
    assert.ok(error instanceof AttuneError);
    assert.equal(error.status, 502);
    assert.equal(error.type, "http_error");
    assert.match(error.body ?? "", /Bad gateway/);
    return true;
  });
  assert.equal(proxy.received.length, 4);
});

test("an outcome batch whose answer was lost is re-sent with the same event ids and stored once", async () => {
  const { externalId } = await newLearner("lost-answer");
  const client = new Attune({ baseUrl: proxy.url, token: ATTUNE_TOKEN, backoffMs: 5 }).forLearner(
    externalId,
  );
  const eventIds = [client.track(outcome), client.track(outcome)];
  // The live server stores the batch, but the client only sees a 503.
  proxy.script({ forwardThenAnswer: 503 });

  const result = await client.flush();

  assert.deepEqual(result, { created: 0, duplicates: 2, requests: 1 });
  assert.equal(proxy.received.length, 2);
  assert.equal(proxy.received[0]?.body, proxy.received[1]?.body);
  assert.deepEqual((await storedOutcomeEventIds(externalId)).sort(), [...eventIds].sort());
});

test("outcomes whose flush ran out of retries stay queued and the next flush sends them", async () => {
  const { externalId } = await newLearner("requeue");
  const client = new Attune({
    baseUrl: proxy.url,
    token: ATTUNE_TOKEN,
    backoffMs: 5,
    retries: 2,
  }).forLearner(externalId);
  const eventIds = [client.track(outcome), client.track(outcome), client.track(outcome)];
  proxy.script({ answer: 503 }, { answer: 503 }, { answer: 503 });

  await assert.rejects(
    client.flush(),
    (error: unknown) => error instanceof AttuneError && error.status === 503,
  );
  assert.equal(client.queued, 3);
  const result = await client.flush();

  assert.deepEqual(result, { created: 3, duplicates: 0, requests: 1 });
  assert.equal(proxy.received.length, 4);
  assert.ok(proxy.received.every((r) => r.body === proxy.received[0]?.body));
  assert.deepEqual((await storedOutcomeEventIds(externalId)).sort(), [...eventIds].sort());
});

function throttled(): unknown {
  return {
    type: "client_error",
    errors: [{ code: "throttled", detail: "Request was throttled.", attr: null }],
  };
}
