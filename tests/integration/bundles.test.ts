// v1 bundles through the real binary: the SDK with bundles (its default) and without, side by side
// on one server, and a raw v1 client that never sends the flag seeing the original frames.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { IrisClient, type IrisMessage } from "../../src/client/index.ts";
import { decodeV1Server, encodeV1Client, encodeV1Server } from "../../src/protocol/v1.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

let server: RunningServer;
const clients: IrisClient[] = [];
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.close();
  expect(await server.stop()).toBe(0);
});

async function client(user: string, bundles: boolean): Promise<{ c: IrisClient; got: IrisMessage[] }> {
  const c = new IrisClient({ url: server.url, user, bundles });
  const got: IrisMessage[] = [];
  c.onMessage((m) => got.push(m));
  clients.push(c);
  await c.connect();
  return { c, got };
}

describe("v1 bundles end to end", () => {
  for (const bundles of [true, false]) {
    test(`SDK ${bundles ? "with" : "without"} bundles: 2,000 stored, then drained in order and acked`, async () => {
      const tag = bundles ? "b" : "p";
      const s = await client(`bsend-${tag}`, bundles);
      const acks = await Promise.all(Array.from({ length: 2000 }, (_, i) => s.c.send(`brecv-${tag}`, `m${i}`)));
      expect(acks.every((a) => a === "stored")).toBe(true);
      const r = await client(`brecv-${tag}`, bundles);
      await until(() => r.got.length === 2000, "2000 stored messages", 20_000);
      expect(r.got.map((m) => m.text())).toEqual(Array.from({ length: 2000 }, (_, i) => `m${i}`));
      const st = r.c.stats;
      // Bundled: pages arrive as a few messages; plain: one WebSocket message per frame.
      if (bundles) expect(st.messagesIn).toBeLessThan(50);
      else expect(st.messagesIn).toBe(st.framesIn);
      if (bundles) expect(s.c.stats.messagesIn).toBeLessThan(s.c.stats.framesIn);
      // Everything was acked: a new connection of the recipient gets nothing again.
      await Bun.sleep(100);
      r.c.close();
      const again = await client(`brecv-${tag}`, !bundles);
      const live = await s.c.send(`brecv-${tag}`, "after");
      expect(live).toBe("delivered");
      await until(() => again.got.length === 1, "the one new message");
      expect(again.got[0]!.text()).toBe("after");
    });
  }

  test("a raw v1 client without the flag sees the original LOGIN_OK and one frame per message", async () => {
    const b = await client("raw-sender", true);
    await Promise.all([1, 2, 3].map((i) => b.c.send("raw-recv", `r${i}`)));
    const ws = new WebSocket(server.url);
    ws.binaryType = "arraybuffer";
    const msgs: Uint8Array[] = [];
    ws.onmessage = (e) => msgs.push(new Uint8Array(e.data as ArrayBuffer));
    await new Promise((r) => (ws.onopen = r));
    ws.send(encodeV1Client({ op: "login", user: "raw-recv", proto: "v1" }));
    await until(() => msgs.length === 4, "login_ok and three deliveries");
    expect(msgs[0]!.byteLength).toBe(1 + 1 + "raw-recv".length + 8);
    expect(msgs.slice(1).map((m) => decodeV1Server(m).op)).toEqual(["deliver", "deliver", "deliver"]);
    // A client bundle is an unknown opcode for a connection that did not ask for bundles.
    const closed = new Promise<number>((r) => (ws.onclose = (e) => r(e.code)));
    ws.send(new Uint8Array([0x26, 0x25]));
    expect(await closed).toBe(1002);
  });
});

test("against a server that reads no flags byte, the SDK logs in again without it", async () => {
  // Stands in for an older Iris: a LOGIN with trailing bytes is BAD_FRAME and a 1002 close (as the
  // original decoder answered); the plain LOGIN is accepted.
  const logins: number[] = [];
  const old = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: (req, srv) => (srv.upgrade(req) ? undefined : new Response("no", { status: 400 })),
    websocket: {
      message(ws, data) {
        const b = data as Uint8Array;
        logins.push(b.byteLength);
        const plain = encodeV1Client({ op: "login", user: "old-user", proto: "v1" });
        if (b.byteLength !== plain.byteLength) {
          ws.send(encodeV1Server({ op: "error", code: "BAD_FRAME", reason: "1 trailing bytes after frame" }));
          return ws.close(1002, "bad frame");
        }
        ws.send(encodeV1Server({ op: "login_ok", user: "old-user", now: Date.now() }));
      },
    },
  });
  const c = new IrisClient({ url: `ws://127.0.0.1:${old.port}/`, user: "old-user" });
  clients.push(c);
  try {
    await c.connect();
    expect(c.state).toBe("online");
    const plainLength = encodeV1Client({ op: "login", user: "old-user", proto: "v1" }).byteLength;
    expect(logins).toEqual([plainLength + 1, plainLength]);
  } finally {
    c.close();
    old.stop(true);
  }
});
