// Hostile clients: rate limits, frame floods, recipients that never read, and a live fuzz run of
// random and mutated frames. The server keeps serving, memory stays bounded, nothing acked is lost.

import { afterEach, describe, expect, test } from "bun:test";
import { Socket } from "node:net";
import { IrisClient, type IrisMessage } from "../../src/client/index.ts";
import { encodeV1Client } from "../../src/protocol/v1.ts";
import { encodeV0Login, encodeV0Send } from "../../src/protocol/v0.ts";
import { RawSocket } from "../helpers/raw.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

let server: RunningServer | null = null;
afterEach(async () => {
  await server?.stop();
  server = null;
});

const metric = async (name: string) => {
  const text = await (await fetch(`${server!.http}/metrics`)).text();
  return Number(text.match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1] ?? NaN);
};

/** A masked client→server WebSocket binary frame (RFC 6455 5.2), written by hand. */
function wsFrame(payload: Uint8Array): Uint8Array {
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const len = payload.length;
  const head = len < 126 ? [0x82, 0x80 | len] : [0x82, 0x80 | 126, len >> 8, len & 255];
  const out = new Uint8Array(head.length + 4 + len);
  out.set(head);
  out.set(mask, head.length);
  for (let i = 0; i < len; i++) out[head.length + 4 + i] = payload[i]! ^ mask[i % 4]!;
  return out;
}

/** Logs in over a raw TCP WebSocket, then stops reading: the kernel buffers fill up. */
async function nonReader(port: number, user: string): Promise<Socket> {
  const sock = new Socket();
  await new Promise<void>((resolve) => sock.connect(port, "127.0.0.1", resolve));
  sock.write(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await new Promise<void>((resolve) => sock.once("data", () => resolve()));
  sock.write(wsFrame(encodeV1Client({ op: "login", user, proto: "v1" })));
  await Bun.sleep(50);
  sock.pause(); // never read again
  return sock;
}

describe("resilience", () => {
  test("per-user message rate limit answers RATE_LIMITED and keeps the connection", async () => {
    server = await startServer({ args: ["--rate-msgs", "20", "--rate-burst", "20"] });
    const c = new IrisClient({ url: server.url, user: "hasty", retryRateLimited: false });
    await c.connect();
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => c.send("calm", `m${i}`)));
    const limited = results.filter((r) =>
      r.status === "rejected" && (r.reason as { code: string }).code === "RATE_LIMITED"
    );
    expect(limited.length).toBeGreaterThan(50);
    expect(results.filter((r) => r.status === "fulfilled").length).toBeGreaterThanOrEqual(20);
    await Bun.sleep(1100);
    expect(await c.send("calm", "after the bucket refilled")).toMatch(/stored|delivered/);
    expect(await metric("iris_rate_limited_total")).toBeGreaterThan(50);
    c.close();
  });

  test("the SDK treats RATE_LIMITED as back-pressure: every send gets through, exactly once", async () => {
    server = await startServer({ args: ["--rate-msgs", "200", "--rate-burst", "50"] });
    const c = new IrisClient({ url: server.url, user: "patient", resendAfterMs: 300 });
    const r = new IrisClient({ url: server.url, user: "patient-peer" });
    const got: string[] = [];
    r.onMessage((m) => got.push(m.text()));
    await c.connect();
    await r.connect();
    const statuses = await Promise.all(Array.from({ length: 300 }, (_, i) => c.send("patient-peer", `p${i}`)));
    expect(statuses.every((s) => s === "delivered" || s === "stored")).toBe(true);
    await until(() => got.length === 300, "all 300 rate-limited messages");
    expect(new Set(got).size).toBe(300);
    expect(await metric("iris_rate_limited_total")).toBeGreaterThan(0);
    c.close();
    r.close();
  });

  test("a frame flood gets RATE_LIMITED, then the connection is closed with 1008", async () => {
    server = await startServer({ args: ["--rate-frames", "100"] });
    const s = await RawSocket.open(server.url);
    s.send(JSON.stringify({ type: "login", user: "flooder" }));
    for (let i = 0; i < 3000; i++) s.send(JSON.stringify({ type: "ping" }));
    expect(await s.closed()).toBe(1008);
    expect((await fetch(`${server.http}/healthz`)).status).toBe(200);
  });

  test("a v0 frame flood is slowed instead (v0 has no error frame): every send is taken, the socket stays open", async () => {
    server = await startServer({ args: ["--rate-frames", "1000"] });
    const s = await RawSocket.open(server.url);
    s.send(encodeV0Login("v0-flooder"));
    for (let i = 0; i < 3000; i++) s.send(encodeV0Send("x", new Uint8Array(1)));
    await until(async () => (await metric("iris_messages_in_total")) === 3000, "all 3000 sends accepted");
    expect(await metric("iris_v0_sender_pauses_total")).toBeGreaterThan(0);
    expect(s.closeCode).toBeNull();
    s.close();
  });

  test("a recipient that never reads is served from the store, then disconnected; nothing is lost", async () => {
    server = await startServer({ args: ["--slow-consumer-bytes", "16384", "--slow-consumer-timeout", "1500"] });
    const sock = await nonReader(server.port, "deaf");
    const sender = new IrisClient({ url: server.url, user: "talker" });
    await sender.connect();
    const payload = "p".repeat(1000);
    const statuses = await Promise.all(Array.from({ length: 3000 }, (_, i) => sender.send("deaf", `${i}:${payload}`)));
    expect(statuses.filter((s) => s === "stored").length).toBeGreaterThan(1000); // spilled to disk, not RAM
    await until(
      async () => (await metric("iris_slow_consumer_disconnects_total")) >= 1,
      "the slow consumer to be cut off",
    );
    sock.destroy();
    const got: IrisMessage[] = [];
    const reader = new IrisClient({ url: server.url, user: "deaf" });
    reader.onMessage((m) => got.push(m));
    await reader.connect();
    await until(() => got.length === 3000, `all 3000 messages for the slow consumer (have ${got.length})`, 30_000);
    expect(got.map((m) => Number(m.text().split(":")[0]))).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    reader.close();
    sender.close();
  });

  test("live fuzz: random and mutated frames on many connections; no crash, no growth", async () => {
    server = await startServer({ args: ["--max-payload", "2048"] });
    const seeds = [
      encodeV1Client({ op: "login", user: "fz", proto: "v1" }),
      encodeV1Client({ op: "send", id: "1", to: "fz", body: new Uint8Array(10) }),
      encodeV1Client({ op: "ack", seq: 5 }),
      encodeV0Send("fz", new Uint8Array(5)),
    ];
    let closed = 0;
    const end = Date.now() + 3000;
    while (Date.now() < end) {
      const socks = await Promise.all(Array.from({ length: 10 }, () => RawSocket.open(server!.url)));
      for (const s of socks) {
        for (let k = 0; k < 20; k++) {
          const base = seeds[Math.floor(Math.random() * seeds.length)]!.slice();
          for (let f = 0; f < 3; f++) base[Math.floor(Math.random() * base.length)] = Math.floor(Math.random() * 256);
          s.send(
            Math.random() < 0.2 ? crypto.getRandomValues(new Uint8Array(1 + Math.floor(Math.random() * 100))) : base,
          );
        }
      }
      await Bun.sleep(50);
      for (const s of socks) {
        if (s.closeCode !== null) closed++;
        s.close();
      }
    }
    expect(closed).toBeGreaterThan(0); // violations were answered by closing
    expect((await fetch(`${server.http}/readyz`)).status).toBe(200);
    // No growth: every fuzzed connection is gone from the server (RSS is too noisy to assert on here).
    await until(async () => (await metric("iris_connections")) === 0, "all fuzzed connections released");
    expect(await metric("iris_protocol_errors_total")).toBeGreaterThan(0);
  });
});
