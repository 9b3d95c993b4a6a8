import assert from "node:assert/strict";
import { test } from "node:test";

import { AttuneError, type Outcome } from "../src/index.js";
import {
  newLearner,
  serviceClient,
  storedOutcomeEventIds,
  uniqueExternalId,
} from "./support/live.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function completed(decision: number, score: number): Outcome {
  return { decision, outcome_type: "MISSION_COMPLETED", completion_rate: score };
}

/** A fetch that records the JSON list bodies it posts. */
function recordingFetch(): { fetch: typeof fetch; batches: unknown[][] } {
  const batches: unknown[][] = [];
  return {
    batches,
    fetch: (input, init) => {
      if (typeof init?.body === "string") batches.push(JSON.parse(init.body) as unknown[]);
      return fetch(input, init);
    },
  };
}

test("flush sends tracked outcomes with generated event ids, and re-flushing them stores nothing new", async () => {
  const { client, externalId } = await newLearner("outcomes");
  const decision = await client.decide("MISSION");
  const outcomes = [0.2, 0.5, 0.9].map((score) => completed(decision.id, score));

  const tracked = outcomes.map((outcome) => ({ ...outcome, event_id: client.track(outcome) }));
  const eventIds = tracked.map((outcome) => outcome.event_id);
  assert.equal(client.queued, 3);
  const first = await client.flush();

  for (const eventId of eventIds) assert.match(eventId, UUID);
  assert.equal(new Set(eventIds).size, 3);
  assert.deepEqual(first, { created: 3, duplicates: 0, requests: 1 });
  assert.equal(client.queued, 0);
  assert.deepEqual((await storedOutcomeEventIds(externalId)).sort(), [...eventIds].sort());

  // The same batch again, as a retry after a lost answer would send it.
  for (const outcome of tracked) client.track(outcome);
  const again = await client.flush();

  assert.deepEqual(again, { created: 0, duplicates: 3, requests: 1 });
  assert.deepEqual((await storedOutcomeEventIds(externalId)).sort(), [...eventIds].sort());
});

test("an event id the caller gives is kept", async () => {
  const { client, externalId } = await newLearner("own-key");
  const decision = await client.decide("MISSION");
  const eventId = `order-${uniqueExternalId("key")}`.slice(0, 64);

  assert.equal(client.track({ ...completed(decision.id, 0.4), event_id: eventId }), eventId);
  await client.flush();

  assert.deepEqual(await storedOutcomeEventIds(externalId), [eventId]);
});

test("reaching flushAt starts a flush in the background", async () => {
  const recorder = recordingFetch();
  const { client, externalId } = await newLearner("auto-flush", {
    fetch: recorder.fetch,
    flushAt: 3,
  });
  const decision = await client.decide("MISSION");
  recorder.batches.length = 0;

  const eventIds = [0.1, 0.2, 0.3].map((score) => client.track(completed(decision.id, score)));
  const explicit = await client.flush(); // waits for the background flush, then has nothing left

  assert.equal(recorder.batches.length, 1);
  assert.equal(recorder.batches[0]?.length, 3);
  assert.equal(explicit.requests, 0);
  assert.deepEqual((await storedOutcomeEventIds(externalId)).sort(), [...eventIds].sort());
});

test("flush sends one request per learner and at most 1000 outcomes a request", async () => {
  const recorder = recordingFetch();
  const attune = serviceClient({ fetch: recorder.fetch, flushAt: 5000 });
  const many = await newLearner("many");
  const few = await newLearner("few");
  const manyClient = attune.forLearner(many.externalId);
  const fewClient = attune.forLearner(few.externalId);
  const outcome: Outcome = {
    context: "SESSION",
    outcome_type: "SESSION_COMPLETED",
    engagement_score: 0.7,
  };

  for (let i = 0; i < 1001; i++) manyClient.track(outcome);
  fewClient.track(outcome);
  fewClient.track(outcome);
  assert.equal(attune.queued, 1003); // one queue for the client and its views
  const result = await attune.flush();

  assert.deepEqual(result, { created: 1003, duplicates: 0, requests: 3 });
  assert.deepEqual(
    recorder.batches.map((batch) => batch.length),
    [1000, 1, 2],
  );
  assert.equal((await storedOutcomeEventIds(many.externalId)).length, 1001);
  assert.equal((await storedOutcomeEventIds(few.externalId)).length, 2);
});

test("a batch the server rejects is dropped from the queue and named by the AttuneError", async () => {
  const { client, externalId } = await newLearner("rejected");
  const decision = await client.decide("MISSION");
  client.track(completed(decision.id, 0.5));
  client.track(completed(decision.id, 9)); // a score above 1

  await assert.rejects(client.flush(), (error: unknown) => {
    assert.ok(error instanceof AttuneError);
    assert.equal(error.status, 400);
    assert.equal(error.type, "validation_error");
    assert.equal(error.errors[0]?.attr, "1.completion_rate");
    assert.equal(error.outcomes?.length, 2);
    return true;
  });
  assert.equal(client.queued, 0);
  assert.deepEqual(await storedOutcomeEventIds(externalId), []);
});

test("an event id reused with a different payload is an AttuneError 422", async () => {
  const { client } = await newLearner("reused");
  const decision = await client.decide("MISSION");
  const eventId = client.track(completed(decision.id, 0.5));
  await client.flush();

  client.track({ ...completed(decision.id, 0.6), event_id: eventId });
  await assert.rejects(client.flush(), (error: unknown) => {
    assert.ok(error instanceof AttuneError);
    assert.equal(error.status, 422);
    assert.equal(error.code, "event_id_reused");
    return true;
  });
});
