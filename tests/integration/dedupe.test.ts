// The durable dedupe window (issue 13): a retry of an accepted (sender, id, recipient) is answered
// "duplicate" and never delivered again, after a server SIGKILL, after the message was delivered,
// acked and deleted, and after either client process restarted. Real binary, real sockets.

import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IrisClient, type IrisMessage } from "../../src/client/index.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

const dirs: string[] = [];
const servers: RunningServer[] = [];
const clients: IrisClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.kill();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function server(dataDir: string, args: string[] = []): Promise<RunningServer> {
  const s = await startServer({ dataDir, args });
  servers.push(s);
  return s;
}
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "iris-dedupe-"));
  dirs.push(d);
  return d;
}
/** A fresh client process's view: no SDK memory of earlier seqs or ids. */
async function client(url: string, user: string, got?: IrisMessage[]): Promise<IrisClient> {
  const c = new IrisClient({ url, user, ackDelayMs: 0 });
  if (got) c.onMessage((m) => got.push(m));
  clients.push(c);
  await c.connect();
  return c;
}
/** Logs in as a new process would (resume 0), waits a moment, and returns what arrived. */
async function freshInbox(url: string, user: string, settleMs = 400): Promise<IrisMessage[]> {
  const got: IrisMessage[] = [];
  const c = await client(url, user, got);
  await Bun.sleep(settleMs);
  c.close();
  return got;
}

describe("durable dedupe", () => {
  test("the four steps: delivered and acked, server SIGKILLed, sender retries, recipient restarts", async () => {
    const dir = dataDir();
    const s1 = await server(dir);
    const bobGot: IrisMessage[] = [];
    const bob = await client(s1.url, "bob", bobGot);
    const alice = await client(s1.url, "alice");
    expect(await alice.send("bob", "hello", { id: "m-1" })).toBe("delivered");
    expect(bobGot.map((m) => [m.id, m.seq])).toEqual([["m-1", 1]]);
    bob.close();
    alice.close();
    await s1.kill(); // SIGKILL: no shutdown sequence

    const s2 = await server(dir);
    const alice2 = await client(s2.url, "alice");
    expect(await alice2.send("bob", "hello", { id: "m-1" })).toBe("duplicate");
    expect(await freshInbox(s2.url, "bob")).toEqual([]); // resume 0, new process: nothing again
  });

  test("a retry after the recipient drained and acked its whole inbox is a duplicate", async () => {
    const s = await server(dataDir());
    const alice = await client(s.url, "alice");
    const ids = Array.from({ length: 50 }, (_, i) => `d-${i}`);
    const first = await Promise.all(ids.map((id) => alice.send("carol", `x${id}`, { id })));
    expect(first.every((a) => a === "stored")).toBe(true);
    const drained = await freshInbox(s.url, "carol", 600);
    expect(drained.map((m) => m.id)).toEqual(ids);
    await until(async () => {
      const m = await (await fetch(`${s.http}/metrics`)).text();
      return /iris_store_inbox_rows 0\b/.test(m); // acked: deleted from the inbox
    }, "carol's acks to delete her rows");
    const again = await Promise.all(ids.map((id) => alice.send("carol", `x${id}`, { id })));
    expect(again.every((a) => a === "duplicate")).toBe(true);
    expect(await freshInbox(s.url, "carol")).toEqual([]);
  });

  test("after the window a retry is accepted as new, as documented", async () => {
    const s = await server(dataDir(), ["--dedupe-window", "1"]);
    const alice = await client(s.url, "alice");
    expect(await alice.send("dave", "one", { id: "w-1" })).toBe("stored");
    expect(await alice.send("dave", "one", { id: "w-1" })).toBe("duplicate");
    expect((await freshInbox(s.url, "dave")).map((m) => m.id)).toEqual(["w-1"]); // delivered, acked
    await Bun.sleep(1300);
    expect(await alice.send("dave", "one", { id: "w-1" })).toBe("stored");
    expect((await freshInbox(s.url, "dave")).map((m) => m.id)).toEqual(["w-1"]);
  });

  test("the same id to two recipients is two messages", async () => {
    const s = await server(dataDir());
    const alice = await client(s.url, "alice");
    expect(await alice.send("erin", "hi", { id: "same" })).toBe("stored");
    expect(await alice.send("frank", "hi", { id: "same" })).toBe("stored");
    expect((await freshInbox(s.url, "erin")).map((m) => m.id)).toEqual(["same"]);
    expect((await freshInbox(s.url, "frank")).map((m) => m.id)).toEqual(["same"]);
  });

  test("a retry of an unacked live delivery is not delivered again, however many came after it", async () => {
    // More unacked deliveries to one recipient (700, under maxPending's 1,000) than the owner's
    // memory of ids holds (512 + a batch of 64): the oldest one's key must not be forgotten, as
    // no store has it yet. Its retry was taken as new and delivered a second time under a new seq.
    const s = await server(dataDir(), ["--pending-spill-ms", "60000"]);
    const bobGot: IrisMessage[] = [];
    const bob = new IrisClient({ url: s.url, user: "bob", ackDelayMs: 60_000 }); // reads, acks nothing yet
    bob.onMessage((m) => bobGot.push(m));
    clients.push(bob);
    await bob.connect();
    const alice = new IrisClient({ url: s.url, user: "alice", resendAfterMs: 60_000 });
    clients.push(alice);
    await alice.connect();
    const ids = Array.from({ length: 700 }, (_, i) => `u-${i}`);
    for (const id of ids) void alice.send("bob", `x${id}`, { id }).catch(() => {});
    await until(() => bobGot.length === ids.length, "bob to get all 700");
    const alice2 = await client(s.url, "alice"); // a restarted sender resends the oldest, unanswered
    void alice2.send("bob", "xu-0", { id: "u-0" }).catch(() => {});
    void alice2.send("bob", "after", { id: "u-after" }).catch(() => {}); // routed behind the retry
    await until(() => bobGot.length > ids.length, "bob to get the send after the retry");
    expect(bob.stats.duplicatesDropped).toBe(0); // the SDK would have hidden a second u-0
    expect(bobGot.map((m) => m.id).filter((id) => id === "u-0")).toEqual(["u-0"]);
    expect(bobGot.at(-1)!.id).toBe("u-after");
  });

  test("v0 sends (no ids) are never deduplicated", async () => {
    const s = await server(dataDir());
    const ws = new WebSocket(s.url);
    ws.binaryType = "arraybuffer";
    await new Promise((r) => (ws.onopen = r));
    const enc = new TextEncoder();
    ws.send(new Uint8Array([0x01, ...enc.encode("gina")]));
    const target = enc.encode("hank");
    const body = enc.encode("same bytes");
    const send = new Uint8Array([0x02, 0, target.length, ...target, 0, body.length, ...body]);
    ws.send(send);
    ws.send(send);
    await until(async () => {
      const m = await (await fetch(`${s.http}/metrics`)).text();
      return /iris_store_rows_appended_total 2\b/.test(m);
    }, "two stored rows");
    ws.close();
    expect((await freshInbox(s.url, "hank")).length).toBe(2);
  });

  test("a clean stop keeps each shard's filter for the next start; after a crash the start rebuilds it", async () => {
    const dir = dataDir();
    const start = async () => {
      const s = await startServer({ dataDir: dir, shards: 2, args: ["--log-level", "info"] });
      servers.push(s);
      return s;
    };
    const times = (s: RunningServer, line: string) => s.output().split(line).length - 1;
    const s1 = await start();
    const alice = await client(s1.url, "alice");
    const ids = Array.from({ length: 40 }, (_, i) => `f-${i}`);
    const to = (i: number) => `rcpt-${i % 4}`; // recipients on both shards
    const first = await Promise.all(ids.map((id, i) => alice.send(to(i), "x", { id })));
    expect(first.every((a) => a === "stored")).toBe(true);
    alice.close();
    expect(await s1.stop()).toBe(0);
    expect(times(s1, "dedupe filter image saved")).toBe(2);

    const s2 = await start();
    await until(
      () => times(s2, "dedupe filter read from the last shutdown's image") === 2,
      "both shards to read their image",
    );
    expect(s2.output()).not.toContain("dedupe filter rebuilt from the store");
    // The window's size is known from the start, not only after the first commit.
    const rows = (await (await fetch(`${s2.http}/metrics`)).text()).match(/^iris_dedupe_rows (\S+)$/m)?.[1];
    expect(rows).toBe("40");
    const alice2 = await client(s2.url, "alice");
    const again = await Promise.all(ids.map((id, i) => alice2.send(to(i), "x", { id })));
    expect(again.every((a) => a === "duplicate")).toBe(true);
    expect(await alice2.send(to(0), "x", { id: "f-new" })).toBe("stored");
    alice2.close();
    await s2.kill(); // SIGKILL: no image; the images read at this start are gone from the file

    const s3 = await start();
    await until(() => times(s3, "dedupe filter rebuilt from the store") >= 1, "a shard to rebuild from the store");
    expect(s3.output()).not.toContain("last shutdown's image");
    const alice3 = await client(s3.url, "alice");
    const third = await Promise.all([...ids, "f-new"].map((id, i) => alice3.send(to(i), "x", { id })));
    expect(third.every((a) => a === "duplicate")).toBe(true);
  });

  test("the window's size and expiry are in /metrics", async () => {
    const s = await server(dataDir(), ["--dedupe-window", "1"]);
    const alice = await client(s.url, "alice");
    await Promise.all(Array.from({ length: 20 }, (_, i) => alice.send("ivan", "x", { id: `e-${i}` })));
    const metric = async (name: string) => {
      const m = await (await fetch(`${s.http}/metrics`)).text();
      return Number(m.match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1] ?? NaN);
    };
    expect(await metric("iris_dedupe_rows")).toBe(20);
    // The shard's filter of the window's keys: at least one generation's first filter (32 KiB),
    // far below its bound, so nothing is held past its size.
    await until(async () => (await metric("iris_dedupe_filter_bytes")) >= 32 * 1024, "the filter's bytes published");
    expect(await metric("iris_dedupe_filter_overfilled_keys")).toBe(0);
    expect(await metric("iris_dedupe_runs_unfiltered")).toBe(0); // the writer's run filters: all held
    expect(await metric("iris_dedupe_run_filter_bytes")).toBeGreaterThanOrEqual(0);
    await until(async () => (await metric("iris_dedupe_expired_total")) === 20, "the keys to expire", 8000);
    expect(await metric("iris_dedupe_rows")).toBe(0);
  });
});
