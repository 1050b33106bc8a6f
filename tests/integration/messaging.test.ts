// End to end through the real binary: online delivery, offline inbox, the login race, drops
// mid-drain, sender retries, restart with stored messages, presence.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { IrisClient, type IrisMessage } from "../../src/client/index.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

for (const shards of [1, 2]) {
  describe(`messaging with ${shards} shard(s)`, () => {
    let server: RunningServer;
    const clients: IrisClient[] = [];

    async function client(
      user: string,
      opts: Partial<ConstructorParameters<typeof IrisClient>[0]> = {},
    ): Promise<{ c: IrisClient; got: IrisMessage[] }> {
      const c = new IrisClient({ url: server.url, user, ...opts });
      const got: IrisMessage[] = [];
      c.onMessage((m) => got.push(m));
      clients.push(c);
      await c.connect();
      return { c, got };
    }

    /** A metric's value summed over its lines in /metrics (0 when absent). */
    async function metric(name: string): Promise<number> {
      const text = await (await fetch(`${server.http}/metrics`)).text();
      let n = 0;
      for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)$`, "gm"))) {
        n += Number(m[1]);
      }
      return n;
    }

    beforeAll(async () => {
      server = await startServer({ shards });
    });
    afterAll(async () => {
      for (const c of clients.splice(0)) c.close();
      expect(await server.stop()).toBe(0);
    });

    {
      test("online delivery reaches the recipient and the sender hears delivered", async () => {
        const a = await client("alice");
        const b = await client("bob");
        // LOGIN_OK goes out before bob's attach reaches his owner (another shard with 2 shards):
        // a send in that window is stored and drained, which is correct but not what this checks.
        await until(async () => (await a.c.status("bob")).online, "bob attached at his owner");
        const status = await a.c.send("bob", "hello bob");
        expect(status).toBe("delivered");
        await until(() => b.got.length === 1, "bob's message");
        expect(b.got[0]!.text()).toBe("hello bob");
        expect(b.got[0]!.from).toBe("alice");
        expect(b.got[0]!.seq).toBeGreaterThan(0);
      });

      test("1,000 messages to an offline user are stored, then arrive complete and in order", async () => {
        const s = await client("sender-1k");
        const acks = await Promise.all(Array.from({ length: 1000 }, (_, i) => s.c.send("offline-1k", `m${i}`)));
        expect(acks.every((a) => a === "stored")).toBe(true);
        // Stored by this process and committed: past the first page's worth of rows (500) the owner
        // keeps them in memory too (router/hot-backlog.ts), so the writer reads the first page only
        // and memory serves the rest.
        await Bun.sleep(300); // the owners' counters reach /metrics every 250 ms
        const before = await metric("iris_hot_backlog_pages_total");
        const fetchesBefore = await metric("iris_store_fetches_total");
        expect(await metric("iris_hot_backlog_bytes")).toBeGreaterThan(1000 * 2);
        const r = await client("offline-1k");
        await until(() => r.got.length === 1000, "1000 stored messages", 20_000);
        expect(r.got.map((m) => m.text())).toEqual(Array.from({ length: 1000 }, (_, i) => `m${i}`));
        const seqs = r.got.map((m) => m.seq);
        expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
        await until(async () => (await metric("iris_hot_backlog_pages_total")) > before, "pages from memory");
        expect(await metric("iris_store_fetches_total")).toBe(fetchesBefore + 1);
        // Acked: the memory goes with the rows, and the drain holds no page out any more.
        await until(async () => (await metric("iris_hot_backlog_bytes")) === 0, "the kept rows freed");
        expect(await (await fetch(`${server.http}/metrics`)).text()).toMatch(/^iris_drain_bytes_out(\{[^}]*\})? \d+$/m);
        await until(async () => (await metric("iris_drain_bytes_out")) === 0, "no drain page out");
      });

      test("a recipient who logs in while messages are still being stored gets every one", async () => {
        const s = await client("racer-sender");
        const n = 3000;
        const sends: Promise<unknown>[] = [];
        const r = new IrisClient({ url: server.url, user: "racer" });
        const got: IrisMessage[] = [];
        r.onMessage((m) => got.push(m));
        clients.push(r);
        for (let i = 0; i < n; i++) {
          sends.push(s.c.send("racer", `r${i}`));
          // Log in mid-flood: some messages are committed, some still on their way to the store.
          if (i === n / 2) void r.connect();
        }
        await Promise.all(sends);
        await until(() => got.length === n, `all ${n} racing messages (have ${got.length})`, 20_000);
        expect(got.map((m) => m.text())).toEqual(Array.from({ length: n }, (_, j) => `r${j}`));
      });

      test("a connection cut mid-drain loses nothing and duplicates nothing for the application", async () => {
        const s = await client("drain-sender");
        const n = 5000;
        await Promise.all(Array.from({ length: n }, (_, i) => s.c.send("drainee", `d${i}`)));
        const r = await client("drainee", { ackDelayMs: 5 });
        await until(() => r.got.length >= 200, "part of the backlog");
        r.c.dropConnection();
        await until(() => r.got.length === n, `full backlog after reconnect (have ${r.got.length})`, 30_000);
        await Bun.sleep(200); // anything extra would arrive now
        expect(r.got.length).toBe(n);
        expect(r.got.map((m) => m.text())).toEqual(Array.from({ length: n }, (_, i) => `d${i}`));
        expect(r.c.stats.reconnects).toBeGreaterThanOrEqual(1);
      });

      test("a sender retry with the same id is stored once", async () => {
        const s = await client("retrier");
        expect(await s.c.send("retry-target", "once", { id: "fixed-id-1" })).toBe("stored");
        expect(await s.c.send("retry-target", "once", { id: "fixed-id-1" })).toBe("duplicate");
        const r = await client("retry-target");
        await until(() => r.got.length === 1, "the one message");
        await Bun.sleep(200);
        expect(r.got.length).toBe(1);
        // After delivery and ack, a late retry is still recognised.
        await Bun.sleep(50);
        expect(await s.c.send("retry-target", "once", { id: "fixed-id-1" })).toBe("duplicate");
        await Bun.sleep(100);
        expect(r.got.length).toBe(1);
      });

      test("presence and last seen", async () => {
        const q = await client("observer");
        const p = await client("present");
        expect(await q.c.status("present")).toEqual({ online: true, lastSeen: expect.any(Number) });
        const before = Date.now();
        p.c.close();
        await until(async () => !(await q.c.status("present")).online, "present to go offline");
        const st = await q.c.status("present");
        expect(st.lastSeen).toBeGreaterThanOrEqual(before - 5);
        expect(st.lastSeen).toBeLessThanOrEqual(Date.now());
        expect(await q.c.status("never-seen-user")).toEqual({ online: false, lastSeen: 0 });
        const http = await (await fetch(`${server.http}/v1/users/present/status`)).json();
        expect(http).toEqual({ user: "present", online: false, lastSeen: st.lastSeen });
      });

      test("a second login for the same user replaces the first", async () => {
        const first = await client("twice");
        const states: string[] = [];
        first.c.onState((s) => states.push(s));
        const second = await client("twice");
        await until(() => states.includes("replaced"), "first connection to be replaced");
        const s = await client("twice-sender");
        await s.c.send("twice", "to the newest");
        await until(() => second.got.length === 1, "delivery to the newer connection");
        expect(first.got.length).toBe(0);
      });

      test("server-side send over HTTP", async () => {
        const r = await client("http-target");
        const res = await fetch(`${server.http}/v1/messages`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ from: "ops", to: "http-target", body: "from http", id: "h1" }),
        });
        expect(res.status).toBe(200);
        // "delivered" once the recipient acked, "stored" if its ack had not arrived yet: both are
        // promises kept; either way the message reaches the recipient.
        expect(await res.json()).toEqual({ id: "h1", status: expect.stringMatching(/^(delivered|stored)$/) });
        await until(() => r.got.length === 1, "the HTTP message");
        expect(r.got[0]!.text()).toBe("from http");
        const bad = await fetch(`${server.http}/v1/messages`, { method: "POST", body: "{}" });
        expect(bad.status).toBe(400);
        expect((await bad.json()).error).toBe("BAD_FRAME");
      });

      test("health, readiness and metrics", async () => {
        expect((await fetch(`${server.http}/healthz`)).status).toBe(200);
        expect(await (await fetch(`${server.http}/readyz`)).json()).toEqual({ ready: true });
        const text = await (await fetch(`${server.http}/metrics`)).text();
        expect(text).toMatch(/^iris_connections \d+$/m);
        expect(text).toMatch(/^iris_messages_in_total [1-9]\d*$/m);
        expect(text).toMatch(/^iris_store_rows_appended_total [1-9]\d*$/m);
        expect(text).toMatch(/^iris_route_latency_seconds_count [1-9]\d*$/m);
      });
    }
  });
}
