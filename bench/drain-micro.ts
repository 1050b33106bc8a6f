// The drain path's stages, timed alone in one thread (issue 14): one user's backlog on a real
// SQLite file is read in pages as the writer reads it, packed, cloned as a port would clone it,
// turned into deliveries and encoded for v0, plain v1 and bundled v1, then deleted as an ack
// would delete it. CPU per row of each stage; `bun --cpu-prof` names the JS functions (the
// compiled binary has no JS symbols and the profiler does not follow Workers). Not a scenario.
// usage: bun [--cpu-prof] bench/drain-micro.ts [ROWS=50000] [SRC_ROOT]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const [rowsArg = "50000", root = resolve(import.meta.dir, "..")] = process.argv.slice(2);
const total = Number(rowsArg);
const { InboxStore } = await import(join(root, "src/store/inbox-store.ts"));
const { cutPage, framePageOf } = await import(join(root, "src/store/writer.ts"));
const { packRows, pageDeliveries } = await import(join(root, "src/router/packed-page.ts"));
const { encodeServerFrame } = await import(join(root, "src/protocol/index.ts"));
const { encodeDeliveries } = await import(join(root, "src/protocol/v1-bundle.ts"));
// deno-lint-ignore no-explicit-any
const framed: any = await import(join(root, "src/router/frame-page.ts")).catch(() => null);

const dir = mkdtempSync(join(tmpdir(), "iris-drain-micro-"));
const store = InboxStore.open(join(dir, "inbox.db"), { maxInboxPerUser: Number.POSITIVE_INFINITY, ttlMs: 0 });
const body = new Uint8Array(64).fill(7);
const t0 = Date.now();
for (let n = 0; n < total;) {
  const rows: unknown[] = [];
  for (let i = 0; i < 1000 && n < total; i++, n++) {
    rows.push({
      recipient: "drainer",
      seq: n + 1,
      sender: `sender-${n % 4}`,
      msgId: `m${n.toString(36)}`,
      ts: t0,
      body,
    });
  }
  store.transaction(() => store.append(rows));
  while (store.inboxIndexDue()) store.transaction(() => store.buildInboxIndex());
}

const us: Record<string, number> = {};
function timed<T>(stage: string, f: () => T): T {
  const c = process.cpuUsage();
  const r = f();
  const d = process.cpuUsage(c);
  us[stage] = (us[stage] ?? 0) + d.user + d.system;
  return r;
}

const PAGE = 8192;
const PAGE_BYTES = 1024 * 1024;
let sink = 0;
for (let after = 0;;) {
  const rows = timed(
    "fetch",
    () =>
      store.fetchFrameRows // stored frame heads (migration 6)
        ? store.fetchFrameRows("drainer", after, PAGE)
        : framed
        ? store.fetchValues("drainer", after, PAGE)
        : store.fetch("drainer", after, PAGE),
  );
  // deno-lint-ignore no-explicit-any
  const page: any = framed ? { rows: rows.map((v: any[]) => ({ seq: v[0] })) } : cutPage(rows, PAGE, PAGE_BYTES);
  if (page.rows.length === 0) break;
  if (framed) {
    const p = timed("pack", () => framePageOf(rows, PAGE, PAGE_BYTES).frames);
    const c = timed("clone", () => structuredClone(p));
    timed("check", () => framed.isFramePage(c));
    timed("encode v0", () => (sink += framed.joinedBodies(c).byteLength));
    timed("encode v1", () => {
      for (let i = 0; i < c.seqs.length; i++) sink += c.frames.subarray(framed.frameStart(c, i), c.ends[i]).byteLength;
    });
    timed("encode v1 bundled", () => (sink += framed.frameBundles(c, PAGE_BYTES).length));
  } else {
    const packed = timed("pack", () => packRows(page.rows));
    const cloned = timed("clone", () => structuredClone(packed));
    // deno-lint-ignore no-explicit-any
    const items: any[] = timed("deliveries", () => pageDeliveries(cloned, after));
    timed("encode v0", () => {
      const parts = items.map((d) => encodeServerFrame({ op: "deliver", ...d }, "v0"));
      const joined = new Uint8Array(parts.reduce((a, b) => a + b.byteLength, 0));
      let at = 0;
      for (const p of parts) joined.set(p, at), at += p.byteLength;
      sink += joined.byteLength;
    });
    timed("encode v1", () => {
      for (const d of items) sink += encodeServerFrame({ op: "deliver", ...d }, "v1").byteLength;
    });
    timed("encode v1 bundled", () => (sink += encodeDeliveries(items, 0, items.length).byteLength));
  }
  after = page.rows[page.rows.length - 1].seq;
  timed("delete", () => store.transaction(() => store.deleteUpTo("drainer", after)));
  if (!page.more && page.rows.length < PAGE) break;
}
// Watermark deletes (migration 5): the acked rows leave the files later, in chunks; timed apart.
if (typeof store.inboxCompactDue === "function") {
  timed("compact (later)", () => {
    while (store.inboxCompactDue()) store.transaction(() => store.compactInbox(8192));
  });
}
store.close();
rmSync(dir, { recursive: true, force: true });
const line = Object.entries(us).map(([k, v]) => `${k} ${(v / total).toFixed(3)}`).join(", ");
console.log(`${total} rows, µs CPU per row: ${line} (sink ${sink})`);
