// Every malformed input gets a clear typed error (and the right close code when it is a protocol
// violation), and never takes the server down.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeV1Server, encodeV1Client } from "../../src/protocol/v1.ts";
import { encodeV0Login } from "../../src/protocol/v0.ts";
import { RawSocket } from "../helpers/raw.ts";
import { type RunningServer, startServer } from "../helpers/server.ts";

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ args: ["--max-payload", "1024", "--login-timeout", "300"] });
});
afterAll(async () => {
  expect((await fetch(`${server.http}/healthz`)).status).toBe(200); // survived everything
  expect(await server.stop()).toBe(0);
});

const v1 = (f: Parameters<typeof encodeV1Client>[0]) => encodeV1Client(f);
const json = (o: unknown) => JSON.stringify(o);

async function loggedIn(user: string, encoding: "v1" | "json" = "v1"): Promise<RawSocket> {
  const s = await RawSocket.open(server.url);
  s.send(encoding === "v1" ? v1({ op: "login", user, proto: "v1" }) : json({ type: "login", user }));
  const ok = await s.next();
  expect(typeof ok === "string" ? JSON.parse(ok).type : decodeV1Server(ok).op).toBe(
    encoding === "v1" ? "login_ok" : "login_ok",
  );
  return s;
}

function errorOf(frame: Uint8Array | string): { code: string; reason: string } {
  if (typeof frame === "string") return JSON.parse(frame);
  const f = decodeV1Server(frame);
  if (f.op !== "error") throw new Error(`expected an error frame, got ${f.op}`);
  return f;
}

describe("malformed input", () => {
  test("sending before login: NOT_LOGGED_IN and close 1008", async () => {
    const s = await RawSocket.open(server.url);
    s.send(v1({ op: "send", id: "1", to: "x", body: new Uint8Array(1) }));
    expect(errorOf(await s.next()).code).toBe("NOT_LOGGED_IN");
    expect(await s.closed()).toBe(1008);
  });

  test("a second login on the same connection: ALREADY_LOGGED_IN, connection stays", async () => {
    const s = await loggedIn("double");
    s.send(v1({ op: "login", user: "other", proto: "v1" }));
    expect(errorOf(await s.next()).code).toBe("ALREADY_LOGGED_IN");
    s.send(v1({ op: "ping" }));
    expect(decodeV1Server((await s.next()) as Uint8Array).op).toBe("pong");
    s.close();
  });

  test("unknown opcode: UNKNOWN_OP and close 1002", async () => {
    const s = await loggedIn("unknown-op");
    s.send(new Uint8Array([0x7e, 1, 2]));
    expect(errorOf(await s.next()).code).toBe("UNKNOWN_OP");
    expect(await s.closed()).toBe(1002);
  });

  test("truncated packet: BAD_FRAME and close 1002", async () => {
    const s = await loggedIn("truncated");
    s.send(v1({ op: "send", id: "1", to: "x", body: new Uint8Array(10) }).subarray(0, 8));
    expect(errorOf(await s.next()).code).toBe("BAD_FRAME");
    expect(await s.closed()).toBe(1002);
  });

  test("payload over --max-payload: PAYLOAD_TOO_LARGE, connection stays", async () => {
    const s = await loggedIn("big-sender");
    s.send(v1({ op: "send", id: "big", to: "x", body: new Uint8Array(1025) }));
    expect(errorOf(await s.next()).code).toBe("PAYLOAD_TOO_LARGE");
    s.send(v1({ op: "ping" }));
    expect(decodeV1Server((await s.next()) as Uint8Array).op).toBe("pong");
    s.close();
  });

  test("a frame beyond the WebSocket limit closes with 1009", async () => {
    const s = await loggedIn("huge-frame");
    s.send(new Uint8Array(8192).fill(0x22));
    expect(await s.closed()).toBe(1009);
  });

  test("invalid JSON closes with 1007; unknown JSON type is UNKNOWN_OP", async () => {
    const a = await RawSocket.open(server.url);
    a.send("{not json");
    expect(errorOf(await a.next()).code).toBe("BAD_FRAME");
    expect(await a.closed()).toBe(1007);
    const b = await RawSocket.open(server.url);
    b.send(json({ type: "teleport" }));
    expect(errorOf(await b.next()).code).toBe("UNKNOWN_OP");
    expect(await b.closed()).toBe(1002);
  });

  test("bad user ids: empty, too long, control characters", async () => {
    for (const user of ["", "x".repeat(300), "a\u0001b"]) {
      const s = await RawSocket.open(server.url);
      s.send(json({ type: "login", user }));
      expect(errorOf(await s.next()).code).toBe("BAD_USER");
      expect(await s.closed()).toBe(1008);
    }
    const s = await loggedIn("good-user", "json");
    s.send(json({ type: "send", id: "1", to: "", body: "x" }));
    const e = errorOf(await s.next());
    expect(e.code).toBe("BAD_USER");
    s.close();
  });

  test("a text frame on a v0 connection closes with 1003", async () => {
    const s = await RawSocket.open(server.url);
    s.send(encodeV0Login("v0-text"));
    await s.next();
    s.send("hello");
    expect(await s.closed()).toBe(1003);
  });

  test("no login within the login timeout closes with 4002", async () => {
    const s = await RawSocket.open(server.url);
    expect(await s.closed(3000)).toBe(4002);
  });

  test("acks beyond what was delivered are harmless", async () => {
    const s = await loggedIn("acker");
    s.send(v1({ op: "ack", seq: 2 ** 50 }));
    s.send(v1({ op: "ping" }));
    expect(decodeV1Server((await s.next()) as Uint8Array).op).toBe("pong");
    s.close();
  });

  test("random garbage frames never crash the server", async () => {
    for (let i = 0; i < 200; i++) {
      const s = await RawSocket.open(server.url);
      const len = 1 + Math.floor(Math.random() * 64);
      const g = crypto.getRandomValues(new Uint8Array(len));
      s.send(i % 2 ? g : new TextDecoder().decode(g));
      s.send(g);
      await s.closed(2000).catch(() => s.close());
    }
    expect((await fetch(`${server.http}/healthz`)).status).toBe(200);
  });
});
