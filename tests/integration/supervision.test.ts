// Issue 3's proof: the Sniper (a shard killed every 1.5 s under traffic), garbage injected into shard
// ports, and the storage writer killed mid-flood. Every message the server acked is delivered
// exactly once to the recipient's application.

import { afterEach, describe, expect, test } from "bun:test";
import { IrisClient } from "../../src/client/index.ts";
import { Traffic } from "../../chaos/lib/traffic.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

let server: RunningServer | null = null;
afterEach(async () => {
  await server?.stop();
  server = null;
});

async function chaosServer(shards: number): Promise<{ s: RunningServer; chaos: string }> {
  const s = await startServer({ shards, args: ["--chaos"] });
  const m = s.output().match(/chaos=(\d+)/);
  if (!m) throw new Error("no chaos port in the ready line");
  return { s, chaos: `http://127.0.0.1:${m[1]}/chaos` };
}

const counters = async (chaos: string) =>
  (await (await fetch(`${chaos}/counters`)).json()) as {
    totals: Record<string, number>;
    shards: Record<string, number>[];
  };

/** Shard kills in the Sniper case, 1.5 s apart. */
const SNIPER_KILLS = 6;

describe("supervision", () => {
  test("Sniper: a shard killed every 1.5 s for 9 s loses and duplicates nothing", async () => {
    const { s, chaos } = await chaosServer(2);
    server = s;
    const t = new Traffic({ url: s.url, users: 200, intervalMs: 100, prefix: "sn" });
    await t.connect();
    // A drop is of a logged-in client, or of a reconnect attempt still logging in: under load an
    // attempt can land on a shard that is killed (or dying) before it logs in, and then it is
    // dropped, and counted as a reconnect, again. Only logged-in drops are bounded by the kills.
    const dropsFrom = { online: 0, connecting: 0 };
    for (const c of t.clients) {
      let prev = c.state;
      c.onState((st) => {
        if (st === "offline" && (prev === "online" || prev === "connecting")) dropsFrom[prev]++;
        prev = st;
      });
    }
    t.start();
    let expectedDrops = 0;
    // Six kills (one a crash) are enough to cross every restart path; the long run is chaos/ sniper.
    for (let k = 0; k < SNIPER_KILLS; k++) {
      await Bun.sleep(1500);
      const i = k % 2;
      const before = await counters(chaos);
      expectedDrops += before.shards[i]!.conns ?? 0;
      expect(await (await fetch(`${chaos}/shards/${i}/${k % 4 === 3 ? "crash" : "kill"}`, { method: "POST" })).json())
        .toBeTruthy();
    }
    t.stop();
    await t.settle(30_000);
    const v = t.verdict();
    t.close();
    console.log(
      "sniper verdict",
      JSON.stringify(v),
      "expectedDrops",
      expectedDrops,
      "dropsFrom",
      JSON.stringify(dropsFrom),
    );
    expect(v.acked).toBeGreaterThan(5_000);
    expect(v.unackedAtEnd).toBe(0);
    expect(v.lost).toBe(0);
    expect(v.duplicated).toBe(0);
    // Only clients on the killed shard were dropped. `conns` counts every open socket of the shard
    // (logged in or not), so the logged-in clients dropped are at most that many, and each of those
    // sockets was dropped and came back. The reconnect count itself is not an invariant: at load 32
    // it was 1605 for 893 sockets (797 logged-in drops, 808 drops of attempts still logging in).
    expect(dropsFrom.online).toBeLessThanOrEqual(expectedDrops);
    expect(v.reconnects).toBeGreaterThanOrEqual(expectedDrops);
    const after = await counters(chaos);
    expect(after.totals.shardRestarts).toBe(SNIPER_KILLS);
    expect((await fetch(`${s.http}/readyz`)).status).toBe(200);
  }, 90_000);

  test("Corruption: 10,000 garbage values into shards during traffic: no crash, no loss", async () => {
    const { s, chaos } = await chaosServer(2);
    server = s;
    const t = new Traffic({ url: s.url, users: 100, intervalMs: 50, prefix: "gc" });
    await t.connect();
    t.start();
    for (let k = 0; k < 20; k++) {
      await fetch(`${chaos}/shards/${k % 2}/garbage?count=500&seed=${k + 1}`, { method: "POST" });
      await Bun.sleep(100);
    }
    t.stop();
    await t.settle(20_000);
    const v = t.verdict();
    t.close();
    const c = await counters(chaos);
    console.log("corruption verdict", JSON.stringify(v), "garbage", c.totals.garbage);
    expect(c.totals.shardRestarts).toBe(0);
    expect(c.totals.garbage).toBeGreaterThanOrEqual(10_000);
    expect(v.lost).toBe(0);
    expect(v.duplicated).toBe(0);
    expect(v.reconnects).toBe(0);
    expect(v.acked).toBeGreaterThan(1000);
  }, 60_000);

  test("Storage writer killed mid-flood of offline messages: nothing acked is lost", async () => {
    const { s, chaos } = await chaosServer(2);
    server = s;
    const sender = new IrisClient({ url: s.url, user: "flooder", resendAfterMs: 500 });
    await sender.connect();
    const n = 20_000;
    const acks: Promise<string>[] = [];
    for (let i = 0; i < n; i++) {
      acks.push(sender.send(`sleeper${i % 50}`, `f${i}`, { id: `f${i}` }));
      if (i === n / 2) {
        await fetch(`${chaos}/writer/kill`, { method: "POST" });
        await fetch(`${chaos}/writer/garbage?count=1000&seed=7`, { method: "POST" });
      }
      if (i % 1000 === 0) await Bun.sleep(1);
    }
    const statuses = await Promise.all(acks);
    expect(statuses.every((x) => x === "stored" || x === "duplicate")).toBe(true);
    const c = await counters(chaos);
    expect(c.totals.writerRestarts).toBe(1);
    const seen = new Map<string, number>();
    const readers = await Promise.all(Array.from({ length: 50 }, async (_, u) => {
      const r = new IrisClient({ url: s.url, user: `sleeper${u}` });
      r.onMessage((m) => seen.set(m.id, (seen.get(m.id) ?? 0) + 1));
      await r.connect();
      return r;
    }));
    await until(() => seen.size === n, `all ${n} flood messages (have ${seen.size})`, 30_000);
    await Bun.sleep(300);
    for (const r of readers) r.close();
    sender.close();
    expect([...seen.values()].every((x) => x === 1)).toBe(true);
  }, 90_000);
});
