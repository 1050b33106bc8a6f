// The shard thread alone (issue 14): sessions, the port mesh and the owner actor of one shard run
// in this process against fake sockets, with a stand-in writer on a real MessagePort (load →
// a seq block, append/remember → committed after each batch, fetch → an empty page). Pairs of v1
// connections send to each other closed loop (a window of unanswered sends per sender, as the
// throughput bench does) and ack once per turn. No sockets, no SQLite, no load generator: what is
// left is the shard thread's own work per message, and `bun --cpu-prof` names its JS functions
// (the compiled binary has no JS symbols, and the profiler does not follow Workers).
// Not a scenario: a tool.
// usage: bun [--cpu-prof] bench/shard-micro.ts [SECONDS=4] [PAIRS=500] [WINDOW=8] [bundles|offline]
//   offline: the offline flood's shape instead: every connection sends round robin to 10,000 users
//   who never log in (a window of sends awaiting "stored"); the stand-in writer answers each stored
//   row as the SQLite writer does (a packed run of acks, or one `sent` per row for the older port
//   form), so the figure is the shard's work per stored message.

import { defaultSettings } from "../src/config/schema.ts";
import { type Transport } from "../src/gateway/transports.ts";
import { type Session, Sessions } from "../src/gateway/session.ts";
import { createMetricsBuffer, MetricsReader, shardSlot, SLOT_MAIN, SlotMetrics } from "../src/observe/metrics.ts";
import { Signals } from "../src/observe/signals.ts";
import { encodeV1Client } from "../src/protocol/v1.ts";
import { V1_BUNDLE_SERVER, V1_FLAG_BUNDLE } from "../src/protocol/v1-bundle.ts";
import { defaultOwnerLimits, Owner } from "../src/router/owner.ts";
import { PortMesh } from "../src/router/ports.ts";
import { isOwnerMsg, type PortMsg, type WriterReq } from "../src/router/wire.ts";

const [secArg = "4", pairsArg = "500", winArg = "8", mode = ""] = process.argv.slice(2);
const SECONDS = Number(secArg);
const PAIRS = Number(pairsArg);
const WINDOW = Number(winArg);
const BUNDLES = mode === "bundles";
const OFFLINE = mode === "offline";
const OFFLINE_USERS = 10_000;

/** A client end: counts what the server wrote to it and remembers the highest delivered seq. */
class FakeSocket implements Transport {
  highest = 0;
  acked = 0;
  delivered = 0;
  sentAcks = 0;
  inFlight = 0;
  partner: FakeSocket | null = null;
  s: Session | null = null;
  send(d: string | Uint8Array): number {
    const b = d as Uint8Array;
    if (b[0] === V1_BUNDLE_SERVER) walkBundle(this, b);
    else this.frame(b, 0);
    return b.byteLength;
  }
  /** One server frame at `at`; returns its length. */
  frame(b: Uint8Array, at: number): number {
    if (b[at] === 0x42) {
      this.highest = Math.max(this.highest, readU32(b, at + 1) * 0x100000000 + readU32(b, at + 5));
      this.delivered++;
      this.partner!.inFlight--;
      const fl = b[at + 17]!;
      const il = b[at + 18 + fl]!;
      return 1 + 8 + 8 + 1 + fl + 1 + il + 4 + readU32(b, at + 19 + fl + il);
    }
    if (b[at] === 0x43) {
      this.sentAcks++;
      if (OFFLINE) this.inFlight--;
      return 1 + 1 + b[at + 1]! + 1;
    }
    if (b[at] === 0x41) return b.length - at; // LOGIN_OK (alone in its message)
    throw new Error(`unexpected server frame 0x${b[at]!.toString(16)}`);
  }
  getBufferedAmount(): number {
    return 0;
  }
  close(code: number, reason: string): void {
    throw new Error(`closed ${code} ${reason}`);
  }
  pause(): void {}
  resume(): void {}
  cork(writes: () => void): boolean {
    writes();
    return true;
  }
}

/** Big-endian u32 (the client side here is not what is measured, but it must not be slow either). */
const readU32 = (b: Uint8Array, at: number) =>
  b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);

function walkBundle(sock: FakeSocket, b: Uint8Array): void {
  let at = 1;
  while (at < b.length) at += sock.frame(b, at);
}

/** "stored" acks for the rows of a packed append (either port form); returns the appends it holds. */
function storedAcks(r: unknown, out: unknown[]): number {
  const p = r as { t: string; counts?: number[]; text?: string; nums: ArrayLike<number>; o: number[]; c: number[] };
  if (p.t === "appendPacked") { // one recipient's rows: o/c per row, ids in the page
    const page = (r as { page: { ids: string[] } }).page;
    page.ids.forEach((id, i) => out.push({ t: "sent", conn: p.c[i]!, id, status: "stored" }));
    return 1;
  }
  // The packed run (router/packed-acks.ts), spelled out so this tool still runs on older sources.
  let ids = "";
  const nums: number[] = [];
  // Numbers per row: 8 in older sources, 10 since rows carry their key hashes.
  const fields = p.nums.length / p.counts!.reduce((a, b) => a + b, 0);
  for (let i = 0, at = 0; i < p.nums.length; i += fields) {
    at += p.nums[i]! + p.nums[i + 1]!;
    ids += p.text!.slice(at, at += p.nums[i + 2]!);
    nums.push(p.nums[i + 6]!, p.nums[i + 2]!);
  }
  out.push({ t: "storedAcks", ids, nums: Float64Array.from(nums) });
  return p.counts!.length;
}

/** The writer's side: replies as the SQLite writer would, minus the disk. */
function fakeWriter(port: MessagePort): void {
  const next = new Map<string, number>();
  port.onmessage = (e) => {
    const out: unknown[] = [];
    let committed = 0;
    for (const r of e.data as WriterReq[]) {
      const t = (r as { t: string }).t;
      if (t === "load") {
        const q = r as { user: string; reserve: number };
        const base = next.get(q.user) ?? 1;
        next.set(q.user, base + q.reserve);
        out.push({ t: "loaded", user: q.user, seqBase: base, seqLimit: base + q.reserve - 1, lastSeen: 0 });
      } else if (t === "appends" || t === "appendPacked") committed += storedAcks(r, out);
      else if (t.startsWith("append") || t.startsWith("remember")) committed++;
      else if (t === "lookup") {
        const q = r as { user: string; from: string; id: string };
        out.push({ t: "lookedUp", user: q.user, from: q.from, id: q.id, seq: 0 });
      } else if (t === "fetch") {
        const q = r as { user: string; gen: number };
        out.push({ t: "rows", user: q.user, gen: q.gen, rows: [], more: false });
      }
    }
    if (committed > 0) out.push({ t: "committed", n: committed });
    if (out.length > 0) port.postMessage(out);
  };
}

const buf = createMetricsBuffer(1);
new SlotMetrics(buf, SLOT_MAIN).set("ready", 1);
const metrics = new SlotMetrics(buf, shardSlot(0));
const settings = { ...defaultSettings, rateMsgs: 0, rateFrames: 0 };
const route: { handle: (m: PortMsg) => void } = { handle: () => {} };
const mesh = new PortMesh(0, 1, metrics, (m) => route.handle(m));
const owner = new Owner({
  self: 0,
  shards: 1,
  toShard: (k, m) => mesh.post(k, m),
  toWriter: (m) => mesh.toWriter(m),
  now: () => Date.now(),
  underPressure: () => false,
}, defaultOwnerLimits);
const sessions = new Sessions({
  index: 0,
  shards: 1,
  settings,
  metrics,
  signals: new Signals(new MetricsReader(buf)),
  post: (k, m) => mesh.post(k, m),
});
route.handle = (m) => (isOwnerMsg(m) ? owner.handle(m) : sessions.handle(m));
const ch = new MessageChannel();
mesh.setWriter(ch.port1);
fakeWriter(ch.port2);

const socks: FakeSocket[] = [];
for (let i = 0; i < 2 * PAIRS; i++) {
  const t = new FakeSocket();
  const s = sessions.open(t, false);
  t.s = s;
  const login = encodeV1Client({
    op: "login",
    user: `u${i}`,
    proto: "v1",
    ...(BUNDLES ? { flags: V1_FLAG_BUNDLE } : {}),
  });
  sessions.onData(s, login);
  socks.push(t);
}
for (let i = 0; i < PAIRS; i++) {
  socks[2 * i]!.partner = socks[2 * i + 1]!;
  socks[2 * i + 1]!.partner = socks[2 * i]!;
}
let nextId = 0;
const body = new Uint8Array(64);

// Partner names, once: the client side is not what is measured.
const names = socks.map((c) => `u${socks.indexOf(c.partner!)}`);
let nextOffline = 0;
const offlineName = () => `offline-${nextOffline++ % OFFLINE_USERS}`;
function clientTurn(): void {
  for (let i = 0; i < socks.length; i++) {
    const c = socks[i]!;
    if (c.highest > c.acked) {
      c.acked = c.highest;
      sessions.onData(c.s!, encodeV1Client({ op: "ack", seq: c.highest }));
    }
    while (c.inFlight < WINDOW) {
      c.inFlight++;
      const to = OFFLINE ? offlineName() : names[i]!;
      sessions.onData(c.s!, encodeV1Client({ op: "send", id: `m${nextId++}`, to, body }));
    }
  }
}

await Bun.sleep(50);
const delivered = () => socks.reduce((n, c) => n + c.delivered, 0);
const sentAcks = () => socks.reduce((n, c) => n + c.sentAcks, 0);
const end = performance.now() + SECONDS * 1000;
const warm = performance.now() + 500;
let d0 = 0, a0 = 0, t0 = 0, cpu0 = process.cpuUsage();
let warmed = false;
while (performance.now() < end) {
  clientTurn();
  await new Promise((r) => setImmediate(r));
  if (!warmed && performance.now() >= warm) {
    warmed = true;
    d0 = delivered();
    a0 = sentAcks();
    t0 = performance.now();
    cpu0 = process.cpuUsage();
  }
}
await Bun.sleep(50);
const cpu = process.cpuUsage(cpu0);
const secs = (performance.now() - t0) / 1000;
const n = OFFLINE ? sentAcks() - a0 : delivered() - d0;
const us = (cpu.user + cpu.system) / n;
console.log(JSON.stringify({
  pairs: PAIRS,
  window: WINDOW,
  bundles: BUNDLES,
  offline: OFFLINE,
  msgsPerSec: Math.round(n / secs),
  usPerMsg: Math.round(us * 100) / 100,
  sentAcks: sentAcks() - a0,
  delivered: n,
  owner: owner.stats,
}));
process.exit(0);
