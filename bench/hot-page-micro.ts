// The shard's pages from memory alone (router/hot-backlog.ts, issue 14): one user's rows are
// stored and committed into a HotBacklog as an owner does, then paged out as a drain takes them
// (the owner's page budget, the kept page buffer), timing each page. A fresh process, so the
// first pages run on code the JIT has not compiled yet, as the first drain of a server does.
// Not a scenario: a tool.
// usage: bun bench/hot-page-micro.ts [ROWS=50000] [v0|v1]   (v0: the bodies alone, as a v0 link's pages)

import { HotBacklog, PageBuffer } from "../src/router/hot-backlog.ts";
import { pageBudget } from "../src/router/drain-page.ts";
import { defaultOwnerLimits } from "../src/router/owner.ts";
import { PAGE_SCRATCH_MAX_BYTES } from "../src/limits.ts";

const [rowsArg = "50000", proto = "v0"] = process.argv.slice(2);
const ROWS = Number(rowsArg);
const bodies = proto === "v0";
const h = new HotBacklog(1 << 30, 0);
const body = new Uint8Array(64).fill(7);
let seq = 1;
while (seq <= ROWS) {
  const rows = [];
  for (let i = 0; i < 100 && seq <= ROWS; i++, seq++) {
    rows.push({ recipient: "u", seq, sender: "sender-1", msgId: `m${seq}`, ts: Date.now(), body });
  }
  h.storing("u", 1, seq - rows.length - 1, rows);
  h.committed(rows);
}
const buffer = new PageBuffer(PAGE_SCRATCH_MAX_BYTES);
const times: number[] = [];
let cursor = 0;
let out = 0;
const t0 = performance.now();
for (let more = true; more;) {
  const { limit, maxBytes } = pageBudget(defaultOwnerLimits, times.length, false);
  const t = performance.now();
  const p = h.page("u", cursor, limit, maxBytes, Date.now(), bodies, buffer);
  if (p === null) throw new Error("the entry did not answer");
  times.push(performance.now() - t);
  out += p.page.seqs.length;
  cursor = p.page.seqs[p.page.seqs.length - 1]!;
  p.page.release?.();
  more = p.more;
}
console.log(JSON.stringify({
  rows: out,
  proto,
  pages: times.length,
  totalMs: Math.round((performance.now() - t0) * 100) / 100,
  pageMs: times.map((t) => Math.round(t * 100) / 100),
}));
