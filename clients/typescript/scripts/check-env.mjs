#!/usr/bin/env node
// Run before the tests: they need a live server, and say so plainly instead of failing on the
// first request (or, worse, being skipped).
const { ATTUNE_URL, ATTUNE_TOKEN } = process.env;

function fail(message) {
  console.error(`Cannot run the tests: ${message}`);
  process.exit(1);
}

if (!ATTUNE_URL || !ATTUNE_TOKEN) {
  fail(
    "ATTUNE_URL and ATTUNE_TOKEN must be set. The tests run against a live Attune server: " +
      "ATTUNE_URL is its root (e.g. http://127.0.0.1:8000), ATTUNE_TOKEN a service account's " +
      "token (`manage.py seed` prints the client-app token).",
  );
}

const users = new URL("/api/v1/users/?page_size=1", ATTUNE_URL);
let response;
try {
  response = await fetch(users, { headers: { Authorization: `Token ${ATTUNE_TOKEN}` } });
} catch (error) {
  fail(`${ATTUNE_URL} does not answer (${error.cause?.message ?? error.message}).`);
}
if (response.status === 401) fail("ATTUNE_TOKEN is not a valid token on ATTUNE_URL.");
if (response.status === 403) {
  fail("ATTUNE_TOKEN is not a service account's (it lacks personalization.act_for_users).");
}
if (!response.ok) fail(`GET ${users} answered ${response.status}.`);
