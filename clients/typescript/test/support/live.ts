/**
 * The live server the tests run against: ATTUNE_URL (its root) and ATTUNE_TOKEN (a service
 * account's token, one holding personalization.act_for_users). Missing either fails the run.
 */
import { randomUUID } from "node:crypto";

import { Attune, type AttuneOptions } from "../../src/index.js";

function required(name: string, example: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set. These tests run against a live Attune server: set ATTUNE_URL to ` +
        "its root and ATTUNE_TOKEN to a service account's token (`manage.py seed` prints " +
        `the client-app token), e.g. ${name}=${example}`,
    );
  }
  return value;
}

export const ATTUNE_URL = required("ATTUNE_URL", "http://127.0.0.1:8000");
export const ATTUNE_TOKEN = required("ATTUNE_TOKEN", "<40 hex characters>");

/** A client of the live server, acting as the service account. */
export function serviceClient(options: Partial<AttuneOptions> = {}): Attune {
  return new Attune({ baseUrl: ATTUNE_URL, token: ATTUNE_TOKEN, ...options });
}

/** An external id no earlier run has used. */
export function uniqueExternalId(label: string): string {
  return `ts-client-${label}-${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
}

/** A fresh learner on the live server, and a client acting for it. */
export async function newLearner(
  label: string,
  options: Partial<AttuneOptions> = {},
): Promise<{ externalId: string; id: number; client: Attune }> {
  const service = serviceClient(options);
  const externalId = uniqueExternalId(label);
  const learner = await service.createLearner(externalId);
  return { externalId, id: learner.id, client: service.forLearner(externalId) };
}

/** The learner's stored outcomes, read straight from `outcomes/` (not through the client). */
export async function storedOutcomeEventIds(externalId: string): Promise<string[]> {
  const eventIds: string[] = [];
  let url: string | null = new URL("/api/v1/outcomes/?page_size=200", ATTUNE_URL).href;
  while (url) {
    const response: Response = await fetch(url, {
      headers: { Authorization: `Token ${ATTUNE_TOKEN}`, "X-On-Behalf-Of": externalId },
    });
    if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
    const page = (await response.json()) as {
      next: string | null;
      results: { event_id: string }[];
    };
    eventIds.push(...page.results.map((outcome) => outcome.event_id));
    url = page.next;
  }
  return eventIds;
}
