// Sign Freshguard records in JavaScript: HMAC-SHA256 over the record's RFC 8785 canonical form.
//
//   npm ci                                   # installs canonicalize, pinned in package-lock.json
//   SIGNING_KEY=... node sign.mjs < records.jsonl > signed.jsonl
//
// Each input line is a record envelope; each output line is the same record with its `signature`.
import { createHmac } from "node:crypto";
import { createInterface } from "node:readline";

import canonicalize from "canonicalize";

// Every member but these is signed.
const UNSIGNED = new Set(["id", "signature", "lineage"]);

export function signRecord(record, key) {
  const signed = Object.fromEntries(Object.entries(record).filter(([name]) => !UNSIGNED.has(name)));
  return createHmac("sha256", key).update(canonicalize(signed), "utf8").digest("hex");
}

async function main() {
  const key = process.env.SIGNING_KEY;
  if (!key) {
    console.error("set SIGNING_KEY to the source's signing key");
    process.exit(2);
  }
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === "") continue;
    const record = JSON.parse(line);
    console.log(JSON.stringify({ ...record, signature: signRecord(record, key) }));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
}
