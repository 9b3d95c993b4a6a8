import assert from "node:assert/strict";
import { test } from "node:test";

import { AttuneError, type Context } from "../src/index.js";
import {
  ATTUNE_TOKEN,
  ATTUNE_URL,
  newLearner,
  serviceClient,
  uniqueExternalId,
} from "./support/live.js";

const STRATEGIES = ["pattern_heavy", "prediction_heavy", "balanced", "conservative"];
const SOURCES = ["DISABLED", "HOLDOUT", "EXPERIMENT", "BANDIT", "ROLLOUT", "BASELINE"];

/** A fetch that counts the requests it makes. */
function countingFetch(): { fetch: typeof fetch; calls: () => number } {
  let calls = 0;
  return {
    fetch: (input, init) => {
      calls += 1;
      return fetch(input, init);
    },
    calls: () => calls,
  };
}

test("decide answers a decision for a learner created through users/", async () => {
  const { client } = await newLearner("decide");

  const decision = await client.decide("MISSION");

  assert.ok(Number.isInteger(decision.id));
  assert.equal(decision.context, "MISSION");
  assert.ok(STRATEGIES.includes(decision.strategy.key), decision.strategy.key);
  assert.equal(typeof decision.strategy.name, "string");
  assert.ok(SOURCES.includes(decision.source), decision.source);
  assert.ok(decision.propensity > 0 && decision.propensity <= 1, String(decision.propensity));
  assert.equal(decision.personalization_applied, decision.strategy.key !== "conservative");
  assert.equal(typeof decision.params, "object");
});

test("a learner named by { id } or per call is the same learner as by its external id", async () => {
  const { externalId, id } = await newLearner("by-id");
  const attune = serviceClient();

  const byId = await attune.forLearner({ id }).decide("CONTENT");
  const perCall = await attune.decide("SESSION", { learner: { externalId } });

  const response = await fetch(new URL("/api/v1/decisions/", ATTUNE_URL), {
    headers: { Authorization: `Token ${ATTUNE_TOKEN}`, "X-On-Behalf-Of": externalId },
  });
  const listed = (await response.json()) as { results: { id: number }[] };
  assert.deepEqual(listed.results.map((d) => d.id).sort(), [byId.id, perCall.id].sort());
});

test("X-On-Behalf-Of for an unknown learner is an AttuneError 404 in the error shape, not retried", async () => {
  const counter = countingFetch();
  const attune = serviceClient({ fetch: counter.fetch, backoffMs: 1 });

  await assert.rejects(
    attune.forLearner(uniqueExternalId("unknown")).decide("MISSION"),
    (error: unknown) => {
      assert.ok(error instanceof AttuneError);
      assert.equal(error.status, 404);
      assert.equal(error.type, "client_error");
      assert.equal(error.errors.length, 1);
      assert.equal(error.errors[0]?.code, "not_found");
      assert.equal(typeof error.errors[0]?.detail, "string");
      assert.equal(error.errors[0]?.attr, null);
      return true;
    },
  );
  assert.equal(counter.calls(), 1);
});

test("a service account deciding for itself is an AttuneError 403 learner_required", async () => {
  await assert.rejects(serviceClient().decide("MISSION"), (error: unknown) => {
    assert.ok(error instanceof AttuneError);
    assert.equal(error.status, 403);
    assert.equal(error.code, "learner_required");
    return true;
  });
});

test("an unknown context is an AttuneError 400 naming the field", async () => {
  const { client } = await newLearner("bad-context");

  await assert.rejects(client.decide("HOMEWORK" as Context), (error: unknown) => {
    assert.ok(error instanceof AttuneError);
    assert.equal(error.status, 400);
    assert.equal(error.type, "validation_error");
    assert.equal(error.errors[0]?.attr, "context");
    return true;
  });
});

test("learner references that X-On-Behalf-Of would misread are refused before sending", () => {
  const attune = serviceClient();
  // "id:7" would name Attune user 7, "" would act as the service account itself.
  for (const reference of ["id:7", "", " padded ", "line\nbreak", "名前"]) {
    assert.throws(() => attune.forLearner(reference), TypeError, JSON.stringify(reference));
  }
  assert.throws(() => attune.forLearner({ id: 0 }), TypeError);
  assert.equal(attune.forLearner("2").learner, "2");
  assert.equal(attune.forLearner({ id: 2 }).learner, "id:2");
});
