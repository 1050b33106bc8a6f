// The writer's dedupe lookup as the window grows (issue 14): KEYS keys are remembered as owners pack
// them, 2,000 a commit, with runs built as the writer builds them; then LOOKUPS keys that were
// never sent are looked up, one by one, in one transaction, as the writer answers a shard whose
// filter says "maybe" (or that is rebuilding its filter, when every send with an id is asked).
// Before migration 12 a lookup checked every run's filter and read the slices of each run whose
// filter said "maybe" (~1% of runs), so its cost grew with the window; since, it checks one filter
// per group of 64 runs first (store/sent-runs.ts). Pass an older tree as SRC_ROOT to compare.
// Not a scenario: a tool.
// usage: bun bench/lookup-micro.ts [KEYS=2000000] [LOOKUPS=20000] [SRC_ROOT]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const [keysArg = "2000000", lookupsArg = "20000", root = resolve(import.meta.dir, "..")] = process.argv.slice(2);
const total = Number(keysArg);
const lookups = Number(lookupsArg);
const { InboxStore } = await import(join(root, "src/store/inbox-store.ts"));
const { sentKeyHash } = await import(join(root, "src/router/sent-filter.ts"));
const { packRemember } = await import(join(root, "src/router/packed-keys.ts"));

/** Keys a commit remembers (a busy shard's group commit). */
const PER_COMMIT = 2000;
/** The default dedupe window (config/schema.ts): no key here is old enough to make a run due by age. */
const WINDOW_MS = 86_400_000;

const dir = mkdtempSync(join(tmpdir(), "iris-lookup-micro-"));
const store = InboxStore.open(join(dir, "inbox.db"), { maxInboxPerUser: Number.POSITIVE_INFINITY, ttlMs: 0 });
const t0 = Date.now();
try {
  for (let n = 0; n < total; n += PER_COMMIT) {
    const keys = [];
    for (let i = n; i < Math.min(total, n + PER_COMMIT); i++) {
      const recipient = `user-${i % 1000}`, sender = `sender-${(i * 7) % 1000}`, msgId = `m${i.toString(36)}`;
      const [h1, h2] = sentKeyHash(recipient, sender, msgId);
      keys.push({ recipient, sender, msgId, seq: i + 1, ts: t0, h1, h2 });
    }
    const pack = packRemember({ t: "remember", keys });
    store.transaction(() => store.sent.rememberPacked(pack.text, pack.nums));
    if (store.sent.due(Date.now(), WINDOW_MS)) store.transaction(() => store.sent.buildRun());
  }
  let found = 0;
  const started = performance.now();
  store.transaction(() => {
    for (let i = 0; i < lookups; i++) {
      if (store.sent.lookup(`user-${i % 1000}`, "sender-x", `absent${i}`, 0) > 0) found++;
    }
  });
  const us = ((performance.now() - started) * 1000) / lookups;
  console.log(
    `lookup ${total} keys (${store.sent.runCount()} runs${
      store.sent.runGroupCount ? `, ${store.sent.runGroupCount()} groups` : ""
    }) from ${root}: ${us.toFixed(1)} µs a lookup of a key never sent` +
      (found > 0 ? ` (${found} found: wrong)` : ""),
  );
} finally {
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
