// The storage writer's share of the hot path, measured alone (issue 14): the same group commits
// the writer makes, on a real SQLite file, without sockets, threads or the load generator, so
// CPU per row compares across builds even on a shared machine. Not a scenario: a tool.
// usage: bun bench/store-micro.ts settle|flood|drain [ROWS] [SRC_ROOT]
//   settle: dedupe records of acked live deliveries, 60 keys per commit (saturation: a 2 ms
//           group commit at ~30k msgs/s), 1,000 users pairwise.
//   flood:  stored rows to 10,000 offline inboxes, 830 rows per commit (the offline flood's
//           measured commit size), each with its dedupe record, as applyAppends writes them.
//   drain:  one user's backlog of ROWS (filled first, not measured), then read in pages of
//           8,192 rows, each page deleted once read (as acks or v0 writes delete it).
//   login:  ROWS users log in, as the writer serves their boxes: seqs reserved in group commits of
//           100 loads (with the user's last-seen time: one statement, or a second query where the
//           store's reservation does not return it), then each user's empty backlog page.
//   SRC_ROOT: another checkout's root (e.g. main's) to measure its store instead of this one.
//   LOOKUP_EVERY=N (env, settle, flood): one dedupe lookup of an absent key after every N commits,
//           as a shard's Bloom false positive asks the writer now and then (0: none).
//   RESERVED=1 (env, flood): every user's seqs are reserved before the clock starts, as owners
//           reserve a block before they store (without it each stored row also upserts `users`).
//   OWNER_HASHES=0|1 (env, settle, flood): every key is built before the clock starts (so the tool's
//           own key generator is not counted); with 1 each carries its two hashes as an owner routed
//           it (sentKeyHash), so the store logs it without hashing it again, as the writer does.
//   PACKED=1 (env, settle, with OWNER_HASHES=1): each commit's keys packed before the clock starts
//           (packRemember) and stored with rememberPacked, as the writer stores an owner's remember.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const [mode = "settle", rowsArg = "300000", root = resolve(import.meta.dir, "..")] = process.argv.slice(2);
const total = Number(rowsArg);
const { InboxStore } = await import(join(root, "src/store/inbox-store.ts"));
const dir = mkdtempSync(join(tmpdir(), "iris-store-micro-"));
const store = InboxStore.open(join(dir, "inbox.db"), { maxInboxPerUser: Number.POSITIVE_INFINITY, ttlMs: 0 });
const body = new Uint8Array(64).fill(7);
const t0 = Date.now();
const perCommit = mode === "flood" ? 830 : 60;
const users = mode === "flood" ? 10_000 : 1_000;
const seqs = new Map<string, number>();

type Key = { recipient: string; sender: string; msgId: string; seq: number; ts: number; h1?: number; h2?: number };

function key(n: number): Key {
  const recipient = `user-${(n * 7919) % users}`;
  const seq = (seqs.get(recipient) ?? 0) + 1;
  seqs.set(recipient, seq);
  return {
    recipient,
    sender: `sender-${(n * 104_729 + 13) % 1000}`,
    msgId: `m${n.toString(36)}`,
    seq,
    ts: t0 + (n >> 6),
  };
}

/** A slice of the inbox index, as the writer writes after a commit (stores with the inbox log). */
function indexInbox(): void {
  if (typeof store.inboxIndexDue === "function" && store.inboxIndexDue()) {
    store.transaction(() => store.buildInboxIndex());
  }
}

const LOGIN_LOADS_PER_COMMIT = 100;
if (mode === "login") {
  const cpu0 = process.cpuUsage();
  for (let u0 = 0; u0 < total; u0 += LOGIN_LOADS_PER_COMMIT) {
    const batch = Array.from({ length: Math.min(LOGIN_LOADS_PER_COMMIT, total - u0) }, (_, i) => `login-${u0 + i}`);
    store.transaction(() => {
      for (const u of batch) {
        const range = store.reserveSeqs(u, 64);
        if (range.lastSeen === undefined) store.getUser(u); // a store whose reservation does not return it
      }
    });
    for (const u of batch) store.fetchFrameBlobs(u, 0, 512);
  }
  const cpu = process.cpuUsage(cpu0);
  console.log(`login ${total} users from ${root}: ${((cpu.user + cpu.system) / total).toFixed(2)} µs CPU/login`);
  store.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

const DRAIN_PAGE = 8192;
if (mode === "drain") {
  for (let n = 0; n < total;) {
    const rows: (Key & { body: Uint8Array })[] = [];
    for (let i = 0; i < 1000 && n < total; i++, n++) {
      rows.push({ recipient: "drainer", seq: n + 1, sender: `s${n % 4}`, msgId: `m${n}`, ts: t0, body });
    }
    store.transaction(() => store.append(rows));
    indexInbox(); // as the writer does after each commit
  }
}
if (mode === "flood" && process.env.RESERVED === "1") {
  store.transaction(() => {
    for (let u = 0; u < users; u++) store.reserveSeqs(`user-${u}`, Math.ceil(total / users) + 1);
  });
}
const lookupEvery = Number(process.env.LOOKUP_EVERY ?? 0);
const ownerHashes = process.env.OWNER_HASHES;
let prebuilt: Key[] | null = null;
if (ownerHashes !== undefined && mode !== "drain") {
  const { sentKeyHash } = await import(join(root, "src/router/sent-filter.ts"));
  prebuilt = Array.from({ length: total }, (_, n) => {
    const k = key(n);
    if (ownerHashes !== "1") return k;
    const [h1, h2] = sentKeyHash(k.recipient, k.sender, k.msgId);
    return { ...k, h1, h2 };
  });
}
// PACKED=1: the commits' keys as an owner's port packs them, built before the clock (a checkout
// without rememberPacked is refused rather than measured another way).
let packs: { text: string; nums: number[] | Float64Array }[] | null = null;
if (process.env.PACKED === "1") {
  if (mode !== "settle" || !prebuilt) throw new Error("PACKED=1 needs settle and OWNER_HASHES=1");
  if (typeof store.sent.rememberPacked !== "function") throw new Error(`${root}: the store has no rememberPacked`);
  const { packRemember } = await import(join(root, "src/router/packed-keys.ts"));
  packs = [];
  for (let n = 0; n < total; n += perCommit) {
    packs.push(packRemember({ t: "remember", keys: prebuilt.slice(n, n + perCommit) }));
  }
}
let commits = 0;
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
for (let after = 0; mode === "drain";) {
  const page = store.fetch("drainer", after, DRAIN_PAGE);
  if (page.length === 0) break;
  after = page[page.length - 1].seq;
  store.transaction(() => store.deleteUpTo("drainer", after));
}
for (let n = 0; mode !== "drain" && n < total;) {
  const keys: Key[] = [];
  for (let i = 0; i < perCommit && n < total; i++, n++) keys.push(prebuilt ? prebuilt[n]! : key(n));
  const pack = packs?.[commits] ?? null;
  store.transaction(() => {
    if (mode === "flood") store.append(keys.map((k) => ({ ...k, body })));
    if (pack) store.sent.rememberPacked(pack.text, pack.nums);
    else store.sent.remember(keys);
    if (lookupEvery > 0 && (commits + 1) % lookupEvery === 0) store.sent.lookup("nobody", "none", `x${n}`, 0);
  });
  commits++;
  if (typeof store.sent.due === "function" && store.sent.due(Date.now(), 86_400_000)) {
    store.transaction(() => store.sent.buildRun()); // as the writer does after a commit
  }
  indexInbox();
}
const cpu = process.cpuUsage(cpu0);
const wallMs = performance.now() - wall0;
const us = (cpu.user + cpu.system) / total;
console.log(
  `${mode} ${total} rows (${mode === "drain" ? `pages of ${DRAIN_PAGE}` : `${perCommit}/commit`}) from ${root}: ${
    us.toFixed(2)
  } µs CPU/row ` +
    `(sys ${(cpu.system / total).toFixed(2)}), ${Math.round(total / (wallMs / 1000))} rows/s wall`,
);
store.close();
rmSync(dir, { recursive: true, force: true });
