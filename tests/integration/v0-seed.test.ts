// Seed (v0) clients as their users run them (issue 15): a connection that logs in as user after
// user, bursts past the rate limit, floods offline inboxes, and the refusals v0 cannot express
// (full inbox, invalid target) — each either served losslessly or closed with a counted reason.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { rmSync } from "node:fs";
import { IrisClient } from "../../src/client/index.ts";
import { OWNER_STATS_EVERY_MS, STATUS_CACHE_MAX } from "../../src/limits.ts";
import {
  decodeV0Status,
  encodeV0Login,
  encodeV0Send,
  encodeV0StatusQuery,
  V0,
  V0_LOGIN_OK,
} from "../../src/protocol/v0.ts";
import { RawSocket } from "../helpers/raw.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";
import { metric, rssMb, V0Tcp } from "../helpers/v0tcp.ts";

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | string) => (typeof b === "string" ? b : new TextDecoder().decode(b));
/** Fixed-width bodies, so a TCP receiver (deliveries are raw bytes, no framing) can split them. */
const body = (i: number) => text(`m${String(i).padStart(7, "0")}`);
const BODY_BYTES = 8;
const STATUS_REPLY_FIXED = 1 + 2 + 1 + 8;

/** Packs many v0 packets into few writes (a seed client's burst, minus the syscalls). */
function packets(n: number, make: (i: number) => Uint8Array, per = 2000): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i += per) {
    const chunk = Array.from({ length: Math.min(per, n - i) }, (_, j) => make(i + j));
    const buf = new Uint8Array(chunk.reduce((s, c) => s + c.byteLength, 0));
    let o = 0;
    for (const c of chunk) {
      buf.set(c, o);
      o += c.byteLength;
    }
    out.push(buf);
  }
  return out;
}

describe("one connection, user after user (default limits)", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ args: ["--tcp-port", "0"] });
  });
  afterAll(async () => {
    await server.stop();
  });

  test("100 users in turn on one TCP connection: LOGIN_OK, then each one's stored messages", async () => {
    const users = Array.from({ length: 100 }, (_, i) => `turn-${i}`);
    const sender = new IrisClient({ url: server.url, user: "turn-sender" });
    await sender.connect();
    await Promise.all(
      users.flatMap((u) => [0, 1, 2].map(async (k) => expect(await sender.send(u, `${u}:${k}`)).toBe("stored"))),
    );
    sender.close();

    const c = await V0Tcp.connect(server.tcpPort!);
    for (const u of users) {
      c.write(encodeV0Login(u));
      expect(await c.read(V0_LOGIN_OK.length)).toEqual(V0_LOGIN_OK);
      const want = [0, 1, 2].map((k) => `${u}:${k}`).join("");
      expect(str(await c.read(want.length))).toBe(want);
    }
    // The previous user went offline with a last-seen time; the current one is online.
    c.write(encodeV0StatusQuery("turn-98"));
    const prev = decodeV0Status(await c.read(STATUS_REPLY_FIXED + "turn-98".length));
    expect(prev.online).toBe(false);
    expect(Math.abs(prev.lastSeenSeconds - Date.now() / 1000)).toBeLessThan(10);
    c.write(encodeV0StatusQuery("turn-99"));
    expect(decodeV0Status(await c.read(STATUS_REPLY_FIXED + "turn-99".length)).online).toBe(true);
    // The seed's rule: a row written to a v0 socket is gone, so every inbox was consumed.
    await until(async () => (await metric(server.http, "iris_store_inbox_rows")) === 0, "inboxes emptied");
    expect(c.pending).toBe(0);
    c.end();
  });

  test("a second v0 login over WebSocket switches the user as well", async () => {
    const sender = new IrisClient({ url: server.url, user: "ws-turn-sender" });
    await sender.connect();
    for (const u of ["ws-turn-a", "ws-turn-b"]) expect(await sender.send(u, `for ${u}`)).toBe("stored");
    sender.close();
    const ws = await RawSocket.open(server.url);
    for (const u of ["ws-turn-a", "ws-turn-b"]) {
      ws.send(encodeV0Login(u));
      expect(await ws.next()).toEqual(V0_LOGIN_OK);
      expect(str(await ws.next())).toBe(`for ${u}`);
    }
    ws.send(encodeV0StatusQuery("ws-turn-a"));
    expect(decodeV0Status((await ws.next()) as Uint8Array).online).toBe(false);
    ws.close();
  });
});

describe("a 60,000-message v0 burst with default limits", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ args: ["--tcp-port", "0"] });
  });
  afterAll(async () => {
    await server.stop();
  });
  const N = 60_000;

  test("over TCP: all arrive, in order; the sender is paused, not dropped", async () => {
    const r = await RawSocket.open(server.url);
    r.send(encodeV0Login("burst-rx"));
    expect(await r.next()).toEqual(V0_LOGIN_OK);
    const s = await V0Tcp.connect(server.tcpPort!);
    s.write(encodeV0Login("burst-tx"));
    expect(await s.read(V0_LOGIN_OK.length)).toEqual(V0_LOGIN_OK);
    const pausesBefore = await metric(server.http, "iris_v0_sender_pauses_total");
    const t0 = performance.now();
    for (const b of packets(N, (i) => encodeV0Send("burst-rx", body(i)))) s.write(b);
    await until(() => r.frames.length >= N, `${N} deliveries`, 30_000);
    const ms = performance.now() - t0;
    const got = r.frames.map(str);
    expect(got.length).toBe(N);
    got.forEach((g, i) => {
      if (g !== str(body(i))) throw new Error(`delivery ${i} is ${g}`);
    });
    expect(await metric(server.http, "iris_v0_sender_pauses_total")).toBeGreaterThan(pausesBefore);
    expect(s.closed).toBe(false);
    console.log(`v0 TCP burst: ${N} sent, ${got.length} arrived in ${Math.round(ms)} ms`);
    s.end();
    r.close();
  });

  test("over WebSocket, one packet per frame: all arrive, in order", async () => {
    const r = await RawSocket.open(server.url);
    r.send(encodeV0Login("wsburst-rx"));
    expect(await r.next()).toEqual(V0_LOGIN_OK);
    const s = await RawSocket.open(server.url);
    s.send(encodeV0Login("wsburst-tx"));
    expect(await s.next()).toEqual(V0_LOGIN_OK);
    const t0 = performance.now();
    for (let i = 0; i < N; i++) s.send(encodeV0Send("wsburst-rx", body(i)));
    await until(() => r.frames.length >= N, `${N} deliveries`, 30_000);
    const ms = performance.now() - t0;
    const got = r.frames.map(str);
    got.forEach((g, i) => {
      if (g !== str(body(i))) throw new Error(`delivery ${i} is ${g}`);
    });
    expect(s.closeCode).toBeNull();
    console.log(`v0 WS burst: ${N} sent, ${got.length} arrived in ${Math.round(ms)} ms`);
    s.close();
    r.close();
  });
});

describe("a v0 flood into offline inboxes with a small --store-backlog-mb", () => {
  const BUDGET_MB = 4;
  const SENDERS = 4;
  const N = 60_000;
  const RECIPIENTS = 5000;
  const pad = "x".repeat(100);
  const flood = (port: number) =>
    Promise.all(Array.from({ length: SENDERS }, async (_, k) => {
      const s = await V0Tcp.connect(port);
      s.write(encodeV0Login(`flood-tx-${k}`));
      expect(await s.read(V0_LOGIN_OK.length)).toEqual(V0_LOGIN_OK);
      const msg = (i: number) => encodeV0Send(`flood-rx-${(i * SENDERS + k) % RECIPIENTS}`, text(`${k}:${i}:${pad}`));
      for (const b of packets(N / SENDERS, msg, 1000)) s.write(b);
      return s;
    }));
  const rowsIn = (dataDir: string) => {
    const db = new Database(`${dataDir}/iris.db`, { readonly: true });
    const n = (db.query("select count(*) as n from inbox_log").get() as { n: number }).n;
    db.close();
    rmSync(dataDir, { recursive: true, force: true });
    return n;
  };

  test("the backlog stays within its budget, senders are slowed, and a graceful stop loses nothing", async () => {
    const server = await startServer({
      args: ["--tcp-port", "0", "--store-backlog-mb", String(BUDGET_MB)],
      keepData: true,
    });
    await Bun.sleep(300);
    const idle = rssMb(server.proc.pid);
    let peakRss = idle;
    let peakBacklog = 0;
    let accepted = 0;
    const t0 = performance.now();
    const senders = await flood(server.tcpPort!);
    while (accepted < N && performance.now() - t0 < 60_000) {
      peakRss = Math.max(peakRss, rssMb(server.proc.pid));
      // The backlog as v0 senders are held to it: bytes plus the measured RAM of each waiting message.
      const rows = await metric(server.http, "iris_store_backlog_rows");
      peakBacklog = Math.max(peakBacklog, (await metric(server.http, "iris_store_backlog_bytes")) + rows * 6144);
      accepted = await metric(server.http, "iris_messages_in_total");
      await Bun.sleep(20);
    }
    const ms = performance.now() - t0;
    const pauses = await metric(server.http, "iris_v0_sender_pauses_total");
    expect(accepted).toBe(N);
    expect(senders.every((s) => !s.closed)).toBe(true);
    expect(pauses).toBeGreaterThan(0);
    expect(await server.stop()).toBe(0);
    const rows = rowsIn(server.dataDir);
    console.log(
      `v0 flood: ${N} msgs, budget ${BUDGET_MB} MiB, ${Math.round(ms)} ms; RSS idle ${idle.toFixed(0)} MB, ` +
        `peak ${peakRss.toFixed(0)} MB; peak backlog ${(peakBacklog / 1048576).toFixed(1)} MiB; pauses ${pauses}; ` +
        `rows after graceful stop ${rows}`,
    );
    expect(rows).toBe(N);
    // The budget holds (slack: what one owner message adds after the last check).
    // RSS is logged above, not asserted: GC timing on a shared machine makes it noisy; the budget
    // is what bounds memory, and it is measured directly.
    expect(peakBacklog).toBeLessThan(BUDGET_MB * 1048576 * 1.25);
  }, 90_000);

  test("kill -9 mid-flood loses at most what the budget holds", async () => {
    const server = await startServer({
      args: ["--tcp-port", "0", "--store-backlog-mb", String(BUDGET_MB)],
      keepData: true,
    });
    await flood(server.tcpPort!);
    await until(async () => (await metric(server.http, "iris_messages_in_total")) >= N / 2, "half the flood");
    const accepted = await metric(server.http, "iris_messages_in_total");
    await server.kill();
    const rows = rowsIn(server.dataDir);
    // A row holds its body plus the measured per-row overhead in the budget's accounting.
    const budgetRows = Math.ceil((BUDGET_MB * 1048576) / (120 + 6144));
    const lost = accepted - rows;
    console.log(
      `kill -9: ${accepted} accepted (read just before the kill), ${rows} stored, lost <= ${lost} (budget ~${budgetRows} rows)`,
    );
    expect(lost).toBeLessThanOrEqual(budgetRows * 1.25);
  }, 60_000);
});

describe("refusals v0 cannot express close the connection with a reason", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ args: ["--tcp-port", "0", "--max-inbox", "100"] });
  });
  afterAll(async () => {
    await server.stop();
  });
  const refusedLines = (what: string) =>
    server.output().split("\n").filter((l) => l.includes("v0 message refused") && l.includes(what));

  test("full inbox over TCP: the sender is closed, counted, logged; the inbox keeps its 100", async () => {
    const before = await metric(server.http, "iris_v0_inbox_full_closes_total");
    const s = await V0Tcp.connect(server.tcpPort!);
    s.write(encodeV0Login("full-tx"));
    expect(await s.read(V0_LOGIN_OK.length)).toEqual(V0_LOGIN_OK);
    for (const b of packets(150, (i) => encodeV0Send("full-rx", body(i)), 50)) s.write(b);
    await s.waitClosed();
    expect(await metric(server.http, "iris_v0_inbox_full_closes_total")).toBe(before + 1);
    await until(() => refusedLines("inbox of full-rx is full").length === 1, "the log line");
    const rx = await V0Tcp.connect(server.tcpPort!);
    rx.write(encodeV0Login("full-rx"));
    expect(await rx.read(V0_LOGIN_OK.length)).toEqual(V0_LOGIN_OK);
    const got = str(await rx.read(100 * BODY_BYTES));
    expect(got).toBe(Array.from({ length: 100 }, (_, i) => str(body(i))).join(""));
    rx.end();
  });

  test("full inbox over WebSocket: close code 4004 with the reason", async () => {
    const s = await RawSocket.open(server.url);
    s.send(encodeV0Login("wsfull-tx"));
    expect(await s.next()).toEqual(V0_LOGIN_OK);
    for (let i = 0; i < 150; i++) s.send(encodeV0Send("wsfull-rx", body(i)));
    expect(await s.closed()).toBe(4004);
    expect(s.closeReason).toBe("inbox of wsfull-rx is full");
  });

  test("zero-length target over TCP and a 65,535-byte target over WebSocket: closed, counted, logged", async () => {
    const before = await metric(server.http, "iris_v0_invalid_target_closes_total");
    const t = await V0Tcp.connect(server.tcpPort!);
    t.write(encodeV0Login("bad-target-tcp"));
    expect(await t.read(V0_LOGIN_OK.length)).toEqual(V0_LOGIN_OK);
    t.write(encodeV0Send("", text("to nobody")));
    await t.waitClosed();

    const w = await RawSocket.open(server.url);
    w.send(encodeV0Login("bad-target-ws"));
    expect(await w.next()).toEqual(V0_LOGIN_OK);
    w.send(encodeV0Send("y".repeat(65_535), text("to a giant")));
    expect(await w.closed()).toBe(4005);
    expect(w.closeReason).toContain("invalid target");
    expect(await metric(server.http, "iris_v0_invalid_target_closes_total")).toBe(before + 2);
    // Rate-limited: at most one line per second for this kind, and at least one.
    await until(() => refusedLines("invalid target").length >= 1, "the log line");
    expect(refusedLines("invalid target").length).toBeLessThanOrEqual(2);
  });

  test("a status query for a zero-length user is answered within a second (TCP and WebSocket)", async () => {
    const offline = new Uint8Array([V0.STATUS_REPLY, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const t = await V0Tcp.connect(server.tcpPort!);
    t.write(encodeV0Login("asks-nobody"));
    expect(await t.read(V0_LOGIN_OK.length)).toEqual(V0_LOGIN_OK);
    t.write(encodeV0StatusQuery(""));
    expect(await t.read(offline.length, 1000)).toEqual(offline);
    const w = await RawSocket.open(server.url);
    w.send(encodeV0Login("ws-asks-nobody"));
    expect(await w.next()).toEqual(V0_LOGIN_OK);
    w.send(encodeV0StatusQuery(""));
    expect(await w.next(1000)).toEqual(offline);
    t.end();
    w.close();
  });
});

describe("status lookups for users Iris holds no state for", () => {
  test(
    "100,000 distinct unknown ids (24x the status cache): all answered from the store, no per-user state kept",
    async () => {
      const shards = 1; // one owner: replies come back in the order asked
      const server = await startServer({ shards, args: ["--tcp-port", "0"] });
      try {
        const c = await V0Tcp.connect(server.tcpPort!);
        c.write(encodeV0Login("asker"));
        expect(await c.read(V0_LOGIN_OK.length)).toEqual(V0_LOGIN_OK);
        const id = (i: number) => `nobody-${String(i).padStart(7, "0")}`;
        const REPLY = STATUS_REPLY_FIXED + id(0).length;
        const ask = async (from: number, n: number) => {
          for (const b of packets(n, (i) => encodeV0StatusQuery(id(from + i)))) c.write(b);
          for (let got = 0; got < n;) {
            const k = Math.min(n - got, 10_000);
            const replies = await c.read(k * REPLY, 60_000);
            for (let j = 0; j < k; j++) {
              const r = replies.subarray(j * REPLY, (j + 1) * REPLY);
              if (
                r[0] !== V0.STATUS_REPLY || str(r.subarray(3, 3 + id(0).length)) !== id(from + got + j) ||
                r[REPLY - 9] !== 0
              ) {
                throw new Error(`bad reply ${j} for ${id(from + got + j)}`);
              }
            }
            got += k;
          }
        };
        await ask(0, 5000); // warm-up: first-use allocations are not what is measured
        await Bun.sleep(500);
        const before = rssMb(server.proc.pid);
        const lookups0 = await metric(server.http, "iris_status_store_lookups_total");
        const held0 = await metric(server.http, "iris_users_in_memory");
        const t0 = performance.now();
        await ask(5000, 100_000);
        const ms = performance.now() - t0;
        await Bun.sleep(500);
        const after = rssMb(server.proc.pid);
        const lookups = (await metric(server.http, "iris_status_store_lookups_total")) - lookups0;
        console.log(
          `100k unknown status lookups in ${Math.round(ms)} ms; RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MB`,
        );
        expect(lookups).toBe(100_000);
        // What used to grow ~0.8 KB per asked id was per-user owner state. Count it directly (the
        // gauge is published every OWNER_STATS_EVERY_MS): RSS is too noisy on a shared machine to
        // assert on; the figure above is logged for the record.
        await Bun.sleep(OWNER_STATS_EVERY_MS * 2);
        expect(held0).toBeGreaterThanOrEqual(1); // the asker: proves the gauge counts anything
        expect(await metric(server.http, "iris_users_in_memory")).toBe(held0);
        expect(await metric(server.http, "iris_status_cache_entries")).toBeLessThanOrEqual(STATUS_CACHE_MAX * shards);
        c.end();
      } finally {
        await server.stop();
      }
    },
    120_000,
  );
});
