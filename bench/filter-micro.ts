// The shard's dedupe filter in a long-running server (issue 14): GENS generations of KEYS keys each
// are added, half a window apart, as a steady load adds them; the generations older than the window
// expire; then every new send's check (`mightHave` of a key never added) is timed, and the share of
// those checks that answer "maybe" (each one a store lookup that holds its recipient's later
// messages) is counted. A fresh server (the throughput bench) has one generation, still growing,
// so this is the only place the filter's steady state is measured. Not a scenario: a tool.
// usage: bun bench/filter-micro.ts [KEYS=2000000] [GENS=5] [SRC_ROOT]

import { resolve } from "node:path";

const [keysArg = "2000000", gensArg = "5", root = resolve(import.meta.dir, "..")] = process.argv.slice(2);
const keysPerGen = Number(keysArg);
const gens = Number(gensArg);
const { SentFilter } = await import(resolve(root, "src/router/sent-filter.ts"));

/** The default window (config/schema.ts); a generation spans half of it. */
const WINDOW_MS = 24 * 3600_000;
const PERIOD_MS = WINDOW_MS / 2;
/** A budget that never binds here: this measures the filters' shape, not the byte bound. */
const BUDGET_BYTES = 4 * 1024 ** 3;
/** New keys checked after the fill. */
const CHECKS = 300_000;

// Keys as the owner hashes them are well mixed 32-bit pairs: a counter through a 32-bit finalizer.
let state = 7;
function next(): number {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return z ^ (z >>> 16);
}

const filter = new SentFilter(WINDOW_MS, BUDGET_BYTES);
const t0 = 1000 * PERIOD_MS;
for (let g = 0; g < gens; g++) {
  for (let i = 0; i < keysPerGen; i++) {
    const ts = t0 + g * PERIOD_MS + Math.floor(i * (PERIOD_MS / keysPerGen));
    filter.add(next() >>> 0, next() | 1, ts, ts);
  }
}
const now = t0 + gens * PERIOD_MS - 1;
filter.expire(now);
const shape = filter.image(now).gens.map((g: { filters: unknown[] }) => g.filters.length).join(",");

let maybe = 0;
const started = performance.now();
for (let i = 0; i < CHECKS; i++) if (filter.mightHave(next() >>> 0, next() | 1, now)) maybe++;
const ns = ((performance.now() - started) * 1e6) / CHECKS;

console.log(
  `filter ${keysPerGen} keys a generation, ${gens} added, from ${root}: filters per live generation ${shape}, ` +
    `${(filter.bytes / 2 ** 20).toFixed(1)} MiB, check of a new key ${ns.toFixed(0)} ns, ` +
    `"maybe" ${((maybe / CHECKS) * 100).toFixed(3)}%`,
);
