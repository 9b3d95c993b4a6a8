import assert from "node:assert/strict";
import { test } from "node:test";

import { AttuneError } from "../src/index.js";
import { serviceClient, uniqueExternalId } from "./support/live.js";

test("createLearner makes a learner that findLearner finds by its external id", async () => {
  const attune = serviceClient();
  const externalId = uniqueExternalId("create");

  const created = await attune.createLearner(externalId, { display_name: "Ada" });
  const found = await attune.findLearner(externalId);

  assert.equal(created.external_id, externalId);
  assert.equal(created.display_name, "Ada");
  assert.ok(Number.isInteger(created.id));
  assert.equal(found?.id, created.id);
});

test("findLearner answers null for an external id nobody has", async () => {
  assert.equal(await serviceClient().findLearner(uniqueExternalId("nobody")), null);
});

test("createLearner with a taken external id is an AttuneError 409 naming the field", async () => {
  const attune = serviceClient();
  const externalId = uniqueExternalId("taken");
  await attune.createLearner(externalId);

  await assert.rejects(attune.createLearner(externalId), (error: unknown) => {
    assert.ok(error instanceof AttuneError);
    assert.equal(error.status, 409);
    assert.equal(error.code, "conflict");
    assert.equal(error.errors[0]?.attr, "external_id");
    return true;
  });
});
