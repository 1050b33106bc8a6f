// The bench's bare relay (bench/baseline-relay.ts) over real WebSockets: as the throughput
// yardstick it stays the original v1 relay (no flags granted, offline sends dropped); with
// --ack-offline it is the offline flood's yardstick (offline sends answered "stored", bundles);
// with --ack-sends every live send is answered "delivered" too (the frame floor of a v1 message).

import { afterEach, expect, test } from "bun:test";
import { type ServerProc, startBaseline } from "../../bench/lib/server.ts";
import { decodeV1ServerMessage, encodeV1Client } from "../../src/protocol/v1.ts";
import { V1_BUNDLE_CLIENT, V1_BUNDLE_SERVER, V1_FLAG_BUNDLE } from "../../src/protocol/v1-bundle.ts";
import type { ServerFrame } from "../../src/protocol/frames.ts";

let relay: ServerProc | null = null;
afterEach(async () => {
  await relay?.stop();
  relay = null;
});

/** A client that keeps every server message it receives, raw. */
async function connect(url: string): Promise<{ ws: WebSocket; got: Uint8Array[]; next(n: number): Promise<void> }> {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const got: Uint8Array[] = [];
  const waiters: { n: number; done: () => void }[] = [];
  ws.onmessage = (e) => {
    got.push(new Uint8Array(e.data as ArrayBuffer));
    for (const w of waiters.splice(0)) {
      if (got.length >= w.n) w.done();
      else waiters.push(w);
    }
  };
  await new Promise<void>((res, rej) => {
    ws.onopen = () => res();
    ws.onerror = () => rej(new Error("relay connection failed"));
  });
  const next = (n: number) =>
    got.length >= n ? Promise.resolve() : Promise.race([
      new Promise<void>((done) => waiters.push({ n, done })),
      Bun.sleep(3000).then(() => {
        throw new Error(`waited 3 s for message ${n}, have ${got.length}`);
      }),
    ]);
  return { ws, got, next };
}

function frames(b: Uint8Array): ServerFrame[] {
  return decodeV1ServerMessage(b);
}

const send = (id: string, to: string) => encodeV1Client({ op: "send", id, to, body: new Uint8Array([1, 2, 3]) });

test("as the throughput yardstick: a flagged login is answered as the original v1 did, offline sends are dropped", async () => {
  relay = await startBaseline();
  const c = await connect(relay.url);
  c.ws.send(encodeV1Client({ op: "login", user: "a", proto: "v1", flags: V1_FLAG_BUNDLE }));
  await c.next(1);
  expect(frames(c.got[0]!)).toEqual([{ op: "login_ok", user: "a", now: expect.any(Number) }]);
  c.ws.send(send("m1", "nobody"));
  // A live send after it: its delivery proves the relay read (and dropped) the first.
  c.ws.send(send("m2", "a"));
  await c.next(2);
  expect(frames(c.got[1]!)[0]).toMatchObject({ op: "deliver", id: "m2", from: "a" });
  expect(c.got.length).toBe(2);
  c.ws.close();
});

test("--ack-sends: a live send is delivered and answered SENT delivered; offline sends are still dropped", async () => {
  relay = await startBaseline(["--ack-sends"]);
  const a = await connect(relay.url);
  const b = await connect(relay.url);
  a.ws.send(encodeV1Client({ op: "login", user: "a", proto: "v1", flags: V1_FLAG_BUNDLE }));
  b.ws.send(encodeV1Client({ op: "login", user: "b", proto: "v1" }));
  await a.next(1);
  await b.next(1);
  expect(frames(a.got[0]!)).toEqual([{ op: "login_ok", user: "a", now: expect.any(Number) }]); // no flag granted
  a.ws.send(send("m0", "nobody"));
  a.ws.send(send("m1", "b"));
  a.ws.send(send("m2", "b"));
  await a.next(3);
  await b.next(3);
  expect(a.got.slice(1).map((m) => frames(m))).toEqual([
    [{ op: "sent", id: "m1", status: "delivered" }],
    [{ op: "sent", id: "m2", status: "delivered" }],
  ]);
  expect(b.got.slice(1).map((m) => frames(m)[0])).toMatchObject([
    { op: "deliver", id: "m1", from: "a", seq: 1 },
    { op: "deliver", id: "m2", from: "a", seq: 2 },
  ]);
  await Bun.sleep(100);
  expect(a.got.length).toBe(3); // nothing for m0: offline sends are dropped without --ack-offline
  a.ws.close();
  b.ws.close();
});

test("--ack-offline: offline sends are answered stored, one SENT each for a plain login", async () => {
  relay = await startBaseline(["--ack-offline"]);
  const c = await connect(relay.url);
  c.ws.send(encodeV1Client({ op: "login", user: "a", proto: "v1" }));
  await c.next(1);
  c.ws.send(send("m1", "nobody"));
  c.ws.send(send("m2", "a"));
  await c.next(3);
  expect(frames(c.got[1]!)).toEqual([{ op: "sent", id: "m1", status: "stored" }]);
  expect(frames(c.got[2]!)[0]).toMatchObject({ op: "deliver", id: "m2" });
  c.ws.close();
});

test("--ack-offline: a bundled login is granted bundles; a client bundle's offline sends come back as one SENT bundle", async () => {
  relay = await startBaseline(["--ack-offline"]);
  const c = await connect(relay.url);
  c.ws.send(encodeV1Client({ op: "login", user: "a", proto: "v1", flags: V1_FLAG_BUNDLE }));
  await c.next(1);
  expect(frames(c.got[0]!)[0]).toMatchObject({ op: "login_ok", flags: V1_FLAG_BUNDLE, maxFrame: 1 << 20 });
  const parts = [send("x1", "off-1"), encodeV1Client({ op: "ack", seq: 7 }), send("x2", "off-2"), send("x3", "a")];
  const bundle = new Uint8Array(1 + parts.reduce((n, p) => n + p.byteLength, 0));
  bundle[0] = V1_BUNDLE_CLIENT;
  let at = 1;
  for (const p of parts) {
    bundle.set(p, at);
    at += p.byteLength;
  }
  c.ws.send(bundle);
  await c.next(3);
  // The live send is delivered as it is read; the SENTs leave together when the bundle is read.
  expect(frames(c.got[1]!)[0]).toMatchObject({ op: "deliver", id: "x3" });
  expect(c.got[2]![0]).toBe(V1_BUNDLE_SERVER);
  expect(frames(c.got[2]!)).toEqual([
    { op: "sent", id: "x1", status: "stored" },
    { op: "sent", id: "x2", status: "stored" },
  ]);
  c.ws.close();
});
