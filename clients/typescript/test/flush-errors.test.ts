import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { Attune, type AttuneOptions, AttuneError, type Outcome } from "../src/index.js";
import { FlakyProxy } from "./support/flaky-proxy.js";
import { ATTUNE_TOKEN, newLearner } from "./support/live.js";

let proxy: FlakyProxy;
let learner: string;

before(async () => {
  proxy = await FlakyProxy.start();
  learner = (await newLearner("flush-errors")).externalId;
});
after(() => proxy.close());
beforeEach(() => {
  proxy.received.length = 0;
  proxy.script();
});

function throughProxy(options: Partial<AttuneOptions> = {}): Attune {
  return new Attune({
    baseUrl: proxy.url,
    token: ATTUNE_TOKEN,
    backoffMs: 5,
    flushAt: 2,
    ...options,
  }).forLearner(learner);
}

const outcome: Outcome = {
  context: "CONTENT",
  outcome_type: "CONTENT_ENGAGED",
  engagement_score: 0.5,
};
const rejected = {
  answer: 400,
  body: {
    type: "validation_error",
    errors: [{ code: "invalid", detail: "Scripted.", attr: "0.engagement_score" }],
  },
};

test("a background flush's failure is thrown by the next flush when nobody listens for it", async () => {
  proxy.script(rejected);
  const client = throughProxy();
  client.track(outcome);
  client.track(outcome); // reaches flushAt

  await assert.rejects(client.flush(), (error: unknown) => {
    assert.ok(error instanceof AttuneError);
    assert.equal(error.status, 400);
    assert.equal(error.outcomes?.length, 2);
    return true;
  });
  assert.deepEqual(await client.flush(), { created: 0, duplicates: 0, requests: 0 });
  assert.equal(proxy.received.length, 1);
});

test("a background flush's failure goes to onFlushError when given", async () => {
  proxy.script(rejected);
  const failures: unknown[] = [];
  const client = throughProxy({ onFlushError: (error) => failures.push(error) });
  client.track(outcome);
  client.track(outcome);

  assert.deepEqual(await client.flush(), { created: 0, duplicates: 0, requests: 0 });
  assert.equal(failures.length, 1);
  assert.ok(failures[0] instanceof AttuneError && failures[0].status === 400);
});

test("a network failure that outlasts the retries is an AttuneError with status 0", async () => {
  proxy.script({ drop: true }, { drop: true });

  await assert.rejects(throughProxy({ retries: 1 }).decide("MISSION"), (error: unknown) => {
    assert.ok(error instanceof AttuneError);
    assert.equal(error.status, 0);
    assert.equal(error.type, "network_error");
    assert.ok(error.cause instanceof Error);
    return true;
  });
  assert.equal(proxy.received.length, 2);
});
