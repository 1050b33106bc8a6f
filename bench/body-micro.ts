// A v0 drain's page both ways, timed alone in one thread (issue 14): the frame blobs the writer
// reads for any link plus the shard's copy of each body out of its frame (joinedBodies), against
// the bodies alone that the writer reads for a v0 link (fetchBodyBlobs, pageOfBodyBlobs), over one
// user's backlog on a real SQLite file, in tail rows or indexed. CPU per row, three rounds each,
// the first on cold code. Not a scenario.
// usage: bun bench/body-micro.ts [tail|index] [ROWS=50000]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InboxStore } from "../src/store/inbox-store.ts";
import { pageOfBlobs, pageOfBodyBlobs } from "../src/router/blob-page.ts";
import { joinedBodies } from "../src/router/frame-page.ts";
import type { StoredRow } from "../src/router/wire.ts";

const [where = "tail", rowsArg = "50000"] = process.argv.slice(2);
const total = Number(rowsArg);
const dir = mkdtempSync(join(tmpdir(), "iris-body-micro-"));
const store = InboxStore.open(join(dir, "inbox.db"), { maxInboxPerUser: Number.POSITIVE_INFINITY, ttlMs: 0 });
const body = new Uint8Array(64).fill(7);
for (let n = 0; n < total;) {
  const rows: StoredRow[] = [];
  for (let i = 0; i < 1000 && n < total; i++, n++) {
    rows.push({ recipient: "u", seq: n + 1, sender: `sender-${n % 4}`, msgId: `m${n.toString(36)}`, ts: 1e12, body });
  }
  store.transaction(() => store.append(rows));
  if (where === "index") { while (store.inboxIndexDue()) store.transaction(() => store.buildInboxIndex()); }
}

const ROWS = 6554; // a 1 MiB page of 64-byte bodies, plus one row to tell a cut page from the end
const MAX_BYTES = 1 << 20;
function round(kind: "frames" | "bodies"): string {
  const c = process.cpuUsage();
  let rows = 0;
  for (let after = 0;;) {
    const p = kind === "frames"
      ? pageOfBlobs(store.fetchFrameBlobs("u", after, ROWS)!, ROWS, MAX_BYTES, after)!
      : pageOfBodyBlobs(store.fetchBodyBlobs("u", after, ROWS)!, ROWS, MAX_BYTES, after)!;
    if (kind === "frames") joinedBodies(p.frames);
    const n = p.frames.seqs.length;
    rows += n;
    if (!p.more) break;
    after = p.frames.seqs[n - 1]!;
  }
  const d = process.cpuUsage(c);
  return ((d.user + d.system) / rows).toFixed(2);
}
const out: Record<string, string[]> = { frames: [], bodies: [] };
for (let i = 0; i < 3; i++) for (const k of ["frames", "bodies"] as const) out[k]!.push(round(k));
console.log(
  `${where}, ${total} rows, µs CPU per row: frames + copy ${out.frames!.join(" / ")}; bodies ${
    out.bodies!.join(" / ")
  }`,
);
store.close();
rmSync(dir, { recursive: true, force: true });
