// A node's process stalls (SIGSTOP, then SIGCONT: what CPU starvation does to its event loop) for
// longer than its self-cut threshold (half of down-after) but shorter than down-after, so the
// other nodes never see it down. It finds its own heartbeat stale, fences itself (drops its owner
// state) and, once its heartbeat is stored again, owns again. Users it owns whose sockets live on
// other nodes stayed connected all along: every message sent to them after the stall, acked
// "stored" or "delivered", must reach them without a new login.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { IrisClient } from "../../src/client/index.ts";
import { Placement } from "../../src/cluster/placement.ts";
import { startThreeNodes, type ThreeNodes } from "../helpers/cluster.ts";
import { until } from "../helpers/server.ts";

/** Longer than the self-cut threshold (down-after 3.5 s / 2), shorter than down-after. */
const STALL_MS = Number(process.env.PROBE_STALL_MS ?? 2500);
/** Recipients owned by the stalled node, their sockets on the other two. */
const RECIPIENTS = 4;
/** One send every this long, from before the stall until AFTER_MS after it. */
const SEND_GAP_MS = 20;
const AFTER_MS = 2500;

let cluster: ThreeNodes;
const clients: IrisClient[] = [];

beforeAll(async () => {
  cluster = await startThreeNodes();
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.close();
}, 30_000);

/** `n` user names whose owner (all three nodes up) is node `o`. */
function ownedBy(o: number, n: number): string[] {
  const owners = new Placement([1, 2, 3].map((i) => ({ id: `iris${i}`, shards: 1 })));
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (owners.ownerOf(`u${i}`)!.node === `iris${o + 1}`) out.push(`u${i}`);
  return out;
}

test("a node that stalls past its self-cut owns again and delivers to its users on other nodes", async () => {
  const o = 0;
  const users = ownedBy(o, RECIPIENTS);
  const got = new Map<string, string[]>(users.map((u) => [u, []]));
  const recipients = users.map((u, i) =>
    new IrisClient({ url: cluster.nodes[1 + (i % 2)]!.url, user: u, resendAfterMs: 1000 })
  );
  recipients.forEach((c, i) => c.onMessage((m) => got.get(users[i]!)!.push(m.text())));
  const sender = new IrisClient({ url: cluster.nodes[2]!.url, user: "sender", resendAfterMs: 1000 });
  clients.push(...recipients, sender);
  await Promise.all([...recipients, sender].map((c) => c.connect()));
  // LOGIN_OK comes from the socket's node before its attach reaches the owner (another node), so
  // a first send that overtakes the attach is stored and drained on it: either way it must arrive.
  expect(["delivered", "stored"]).toContain(await sender.send(users[0]!, "before"));
  await until(() => got.get(users[0]!)!.includes("before"), "the first message at its recipient", 10_000);

  // Sends go on through the stall and after it (round-robin over the recipients).
  const texts: { to: string; text: string }[] = [{ to: users[0]!, text: "before" }];
  const statuses: Promise<string>[] = [];
  let sending = true;
  const load = (async () => {
    for (let k = 0; sending; k++) {
      const t = { to: users[k % users.length]!, text: `m${k}` };
      texts.push(t);
      statuses.push(sender.send(t.to, t.text));
      await Bun.sleep(SEND_GAP_MS);
    }
  })();
  await Bun.sleep(500);
  const pid = cluster.nodes[o]!.proc.pid;
  process.kill(pid, "SIGSTOP");
  await Bun.sleep(STALL_MS);
  process.kill(pid, "SIGCONT");
  await Bun.sleep(AFTER_MS); // its heartbeat is stored again: it owns again
  sending = false;
  await load;
  const acked = await Promise.all(statuses);
  expect(acked.every((s) => s === "delivered" || s === "stored" || s === "duplicate")).toBe(true);
  const missing = () => texts.filter((t) => !got.get(t.to)!.includes(t.text));
  await until(() => missing().length === 0, "every acked message at its connected recipient", 10_000).catch((e) => {
    console.log(`missing ${missing().length}: ${missing().slice(0, 10).map((t) => t.text).join(" ")}`);
    console.log(`iris${o + 1}: ${cluster.nodes[o]!.output().slice(-1500)}`);
    throw e;
  });
  for (const [, g] of got) expect(new Set(g).size).toBe(g.length);
  const reconnects = recipients.reduce((n, c) => n + c.stats.reconnects, 0);
  expect(got.size).toBe(users.length);
  expect([...got.values()].reduce((n, g) => n + g.length, 0)).toBe(texts.length);
  console.log(
    `stall ${STALL_MS} ms: ${texts.length} sends through it, all acked and delivered once; recipient reconnects ${reconnects}`,
  );
}, 60_000);

/** Pairs whose two users share an owner node, their sockets on the two other nodes (the scale layout). */
function crossPairs(perOwner: number): { a: string; b: string; owner: number }[] {
  const out: { a: string; b: string; owner: number }[] = [];
  for (let o = 0; o < 3; o++) {
    const us = ownedBy(o, 2 * perOwner).map((u) => `${u}`);
    for (let i = 0; i < perOwner; i++) out.push({ a: us[2 * i]!, b: us[2 * i + 1]!, owner: o });
  }
  return out;
}

test("pairs on every node send through a stall of one node: every acked message delivered once", async () => {
  const victim = Number(process.env.PROBE_VICTIM ?? 2);
  const pairs = crossPairs(3);
  const got = new Map<string, string[]>();
  const all: { user: string; node: number; partner: string }[] = pairs.flatMap((p) => [
    { user: p.a, node: (p.owner + 1) % 3, partner: p.b },
    { user: p.b, node: (p.owner + 2) % 3, partner: p.a },
  ]);
  const cs = all.map((u) => {
    const c = new IrisClient({ url: cluster.nodes[u.node]!.url, user: u.user, resendAfterMs: 1000 });
    got.set(u.user, []);
    c.onMessage((m) => got.get(u.user)!.push(m.text()));
    return c;
  });
  clients.push(...cs);
  await Promise.all(cs.map((c) => c.connect()));
  const texts: { to: string; text: string }[] = [];
  const statuses: Promise<string>[] = [];
  let sending = true;
  const load = Promise.all(all.map(async (u, i) => {
    for (let k = 0; sending; k++) {
      const t = { to: u.partner, text: `${u.user}:${k}` };
      texts.push(t);
      statuses.push(cs[i]!.send(t.to, t.text));
      await Bun.sleep(100);
    }
  }));
  await Bun.sleep(1000);
  const pid = cluster.nodes[victim]!.proc.pid;
  process.kill(pid, "SIGSTOP");
  await Bun.sleep(STALL_MS);
  process.kill(pid, "SIGCONT");
  await Bun.sleep(AFTER_MS + 3000);
  sending = false;
  await load;
  const acked = await Promise.all(statuses);
  expect(acked.every((s) => s === "delivered" || s === "stored" || s === "duplicate")).toBe(true);
  const missing = () => texts.filter((t) => !got.get(t.to)!.includes(t.text));
  await until(() => missing().length === 0, "every acked message at its recipient", 15_000).catch((e) => {
    console.log(`missing ${missing().length}: ${missing().slice(0, 20).map((t) => `${t.to}<${t.text}`).join(" ")}`);
    for (const [i, n] of cluster.nodes.entries()) console.log(`iris${i + 1}: ${n.output().slice(-1200)}`);
    throw e;
  });
  for (const [, g] of got) expect(new Set(g).size).toBe(g.length);
  const reconnects = cs.reduce((n, c) => n + c.stats.reconnects, 0);
  console.log(
    `pairs, stall ${STALL_MS} ms of iris${
      victim + 1
    }: ${texts.length} sends, all delivered once; reconnects ${reconnects}`,
  );
}, 90_000);
