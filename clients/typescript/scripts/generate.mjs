#!/usr/bin/env node
// Regenerates src/schema.ts, the types of every route, from the server's OpenAPI schema at
// $ATTUNE_URL/api/schema/.
//
//   npm run generate                    write src/schema.ts
//   node scripts/generate.mjs --stdout  print it instead (test/schema.test.ts compares this
//                                       with the committed file, so drift fails the tests)
import { writeFile } from "node:fs/promises";
import openapiTS, { COMMENT_HEADER, astToString } from "openapi-typescript";

const SCHEMA_FILE = new URL("../src/schema.ts", import.meta.url);

/** The server's schema as openapi-typescript turns it into TypeScript, header included. */
async function schemaTypes(baseUrl) {
  const url = new URL("/api/schema/", baseUrl);
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" } });
  } catch (error) {
    throw new Error(`Cannot reach ${url}: ${error.cause?.message ?? error.message}`);
  }
  if (!response.ok) {
    throw new Error(`${url} answered ${response.status}, not the OpenAPI schema.`);
  }
  const schema = await response.json();
  return `${COMMENT_HEADER}${astToString(await openapiTS(schema, { silent: true }))}`;
}

async function main() {
  const baseUrl = process.env.ATTUNE_URL;
  if (!baseUrl) {
    console.error(
      "ATTUNE_URL is not set: give the server's root, e.g. ATTUNE_URL=http://127.0.0.1:8000",
    );
    process.exit(1);
  }
  const types = await schemaTypes(baseUrl);
  if (process.argv.includes("--stdout")) {
    process.stdout.write(types);
    return;
  }
  await writeFile(SCHEMA_FILE, types);
  console.log(`Wrote ${SCHEMA_FILE.pathname} from ${new URL("/api/schema/", baseUrl)}`);
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
