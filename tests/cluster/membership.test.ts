// Membership against a real nats-server: heartbeats in a KV bucket, up/draining/down as each
// observer sees it, graceful leave, garbage in the bucket counted and ignored.

import { expect, test } from "bun:test";
import { Kvm } from "@nats-io/kv";
import { Membership, NODES_BUCKET } from "../../src/cluster/membership-kv.ts";
import type { Member } from "../../src/cluster/placement.ts";
import { natsForFile } from "../helpers/nats-links.ts";

const TIMING = { heartbeatMs: 100, downAfterMs: 450, forgetAfterMs: 5000 };
const fx = natsForFile();
const links = fx.links;

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(20);
  }
}

async function node(id: string, changes: Member[][] = []): Promise<Membership> {
  const link = await fx.open(id);
  const rec = { id, state: "up" as const, shards: 2, conns: 0, startedAt: Date.now(), http: "" };
  const m = new Membership(link.nc, rec, 1, TIMING, (ms) => changes.push(ms));
  await m.start();
  return m;
}

const states = (m: Membership) => m.view().map((v) => `${v.id}:${v.observed}`).join(" ");

test("three nodes see each other, drain, crash (silence) and leave", async () => {
  const changes: Member[][] = [];
  const a = await node("a", changes);
  const b = await node("b");
  const c = await node("c");
  await until(() => states(a) === "a:up b:up c:up" && states(c) === "a:up b:up c:up");
  expect(a.current().ownerOf("alice")).toEqual(c.current().ownerOf("alice"));
  expect(changes.at(-1)!.map((m) => m.id)).toEqual(["a", "b", "c"]);

  await b.setState("draining");
  await until(() => states(a) === "a:up b:draining c:up");
  expect(a.current().size).toBe(2);

  await c.stop(false); // a crash: no goodbye, the record just stops being refreshed
  await until(() => states(a) === "a:up b:draining c:down");
  await until(() => changes.at(-1)!.map((m) => m.id).join() === "a"); // noticed on a's next tick
  expect(a.current().ownerOf("anyone")!.node).toBe("a");

  await b.stop(true); // graceful leave: the record is deleted at once
  await until(() => !states(a).includes("b:"));
  await a.stop();
});

test("garbage in the bucket is counted and never becomes a member", async () => {
  const a = await node("g1");
  const kv = await new Kvm(links.at(-1)!.nc).open(NODES_BUCKET);
  await kv.put("evil", "{not json");
  await kv.put("g2", JSON.stringify({ id: "other", state: "up" }));
  await until(() => a.counters.garbage >= 2);
  const ids = a.view().map((v) => v.id);
  expect(ids).toContain("g1");
  expect(ids).not.toContain("evil");
  expect(ids).not.toContain("other");
  expect(ids).not.toContain("g2");
  await a.stop();
});

test("a node whose watch goes deaf keeps its view (no 'nobody up' and back) and credits the others after", async () => {
  const changes: Member[][] = [];
  const a = await node("w1", changes);
  const b = await node("w2");
  await until(() => states(a).includes("w1:up w2:up") && states(b).includes("w1:up w2:up"));
  const before = changes.length;
  // The watch stops delivering and every reopen yields nothing (its consumer on a dead NATS
  // server, a reopen waiting for an R3 election), while a's own heartbeat puts still succeed.
  const inner = a as unknown as { stopWatch: (() => void) | null; openWatch: () => Promise<void> };
  inner.openWatch = async () => {};
  inner.stopWatch?.();
  const beats = a.counters.heartbeats;
  await Bun.sleep(TIMING.downAfterMs * 3);
  expect(a.counters.heartbeats - beats).toBeGreaterThan(3); // its puts are stored meanwhile: deaf, not cut
  expect(changes.slice(before).map((ms) => ms.map((m) => m.id).join())).toEqual([]);
  expect(a.current().size).toBe(2);
  // The watch works again: the view comes back with both up, and nothing moved in between.
  delete (inner as { openWatch?: unknown }).openWatch;
  await until(() => states(a).includes("w1:up w2:up"));
  await Bun.sleep(TIMING.heartbeatMs * 3);
  expect(changes.slice(before).map((ms) => ms.map((m) => m.id).join())).toEqual([]);
  await b.stop();
  await until(() => changes.at(-1)!.map((m) => m.id).join() === "w1");
  await a.stop();
});

test("each heartbeat carries the node's connection count as its source says now", async () => {
  let conns = 0;
  const link = await fx.open("k1");
  const rec = { id: "k1", state: "up" as const, shards: 2, conns: 0, startedAt: Date.now(), http: "" };
  const a = new Membership(link.nc, rec, 1, TIMING, () => {}, () => conns);
  await a.start();
  const b = await node("k2");
  const seenByB = () => b.view().find((v) => v.id === "k1")?.conns;
  await until(() => seenByB() === 0);
  const garbage = b.counters.garbage; // the bucket may hold an earlier test's garbage
  conns = 7;
  await until(() => seenByB() === 7);
  conns = 3;
  await until(() => seenByB() === 3);
  conns = Number.NaN; // a broken source never makes the record invalid (the others would drop it as garbage)
  await until(() => seenByB() === 0);
  expect(b.counters.garbage).toBe(garbage);
  await a.stop();
  await b.stop();
});
