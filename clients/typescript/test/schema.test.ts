import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { ATTUNE_URL } from "./support/live.js";

const packageRoot = new URL("../../", import.meta.url);

test("src/schema.ts is what openapi-typescript generates from the live server's schema", async () => {
  const { stdout: generated } = await promisify(execFile)(
    process.execPath,
    [fileURLToPath(new URL("scripts/generate.mjs", packageRoot)), "--stdout"],
    { env: { ...process.env, ATTUNE_URL }, maxBuffer: 64 * 1024 * 1024 },
  );
  const committed = await readFile(new URL("src/schema.ts", packageRoot), "utf8");
  if (generated === committed) return;

  const generatedLines = generated.split("\n");
  const committedLines = committed.split("\n");
  const line = generatedLines.findIndex((text, index) => text !== committedLines[index]);
  const first = line === -1 ? committedLines.length : line;
  assert.fail(
    `src/schema.ts has drifted from ${ATTUNE_URL}/api/schema/ at line ${first + 1}:\n` +
      `  committed: ${JSON.stringify(committedLines[first] ?? "<end of file>")}\n` +
      `  generated: ${JSON.stringify(generatedLines[first] ?? "<end of file>")}\n` +
      "Run `CLIENTS_REGENERATE=1 make test-clients` (or `npm run generate` against a live server) and commit the result.",
  );
});
