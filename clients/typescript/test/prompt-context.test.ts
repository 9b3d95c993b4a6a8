import assert from "node:assert/strict";
import { test } from "node:test";

import { ATTUNE_TOKEN, ATTUNE_URL, newLearner } from "./support/live.js";

test("promptContext answers the learner's adaptation and a text for a content generator", async () => {
  const { client } = await newLearner("prompt");

  const prompt = await client.promptContext("CONTENT");

  assert.equal(typeof prompt.language, "string");
  assert.equal(typeof prompt.text, "string");
  assert.ok(prompt.text.length > 0);
  assert.equal(typeof prompt.strategy.key, "string");
  assert.equal(typeof prompt.params, "object");
  for (const field of [
    "tone",
    "reading_length",
    "learning_style",
    "software_level",
    "hardware_level",
    "weaknesses",
    "goals",
    "decision",
  ]) {
    assert.ok(field in prompt, `no ${field} in ${JSON.stringify(prompt)}`);
  }
});

test("promptContext for a learner who switched personalization off gives the baseline", async () => {
  const { client, externalId } = await newLearner("prompt-off");
  const response = await fetch(new URL("/api/v1/me/preferences/", ATTUNE_URL), {
    method: "PATCH",
    headers: {
      Authorization: `Token ${ATTUNE_TOKEN}`,
      "X-On-Behalf-Of": externalId,
      "Content-Type": "application/json",
    },
    body: JSON.stringify({ personalization_level: "NONE" }),
  });
  assert.equal(response.status, 200, await response.text());

  const prompt = await client.promptContext("CONTENT");

  assert.equal(typeof prompt.language, "string");
  assert.equal(prompt.strategy.key, "conservative");
});
