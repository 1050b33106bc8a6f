// A live message reaches a plain v1 (or JSON) recipient as exactly one DELIVER frame, in seq
// order. The SDK drops a repeated seq silently, so SDK-level tests cannot see a delivery written
// twice; this test reads the raw frames. (A misplaced `else` in the outbox path once wrote every
// live delivery twice, queued and direct, and the SDK tests still passed.)

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeV1Server, encodeV1Client } from "../../src/protocol/v1.ts";
import { RawSocket } from "../helpers/raw.ts";
import { type RunningServer, startServer } from "../helpers/server.ts";

let server: RunningServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

async function loginV1(user: string): Promise<RawSocket> {
  const s = await RawSocket.open(server.url);
  s.send(encodeV1Client({ op: "login", user, proto: "v1" }));
  expect(decodeV1Server((await s.next()) as Uint8Array).op).toBe("login_ok");
  return s;
}

async function loginJson(user: string): Promise<RawSocket> {
  const s = await RawSocket.open(server.url);
  s.send(JSON.stringify({ type: "login", user }));
  expect(JSON.parse((await s.next()) as string).type).toBe("login_ok");
  return s;
}

/** Every frame `s` receives within `ms` after the first `n` arrived (to catch late extras too). */
async function collect(s: RawSocket, n: number, ms = 300): Promise<(Uint8Array | string)[]> {
  const out: (Uint8Array | string)[] = [];
  while (out.length < n) out.push(await s.next());
  await Bun.sleep(ms);
  while (s.frames.length > 0) out.push(s.frames.shift()!);
  return out;
}

const N = 20;

describe("a live delivery is written once", () => {
  test("plain v1: N sends, N DELIVER frames with increasing seqs", async () => {
    const bob = await loginV1("once-bob");
    const alice = await loginV1("once-alice");
    for (let i = 0; i < N; i++) {
      alice.send(encodeV1Client({ op: "send", id: `m${i}`, to: "once-bob", body: new TextEncoder().encode(`x${i}`) }));
    }
    const got = (await collect(bob, N)).map((f) => decodeV1Server(f as Uint8Array));
    const delivers = got.filter((f) => f.op === "deliver");
    expect(delivers.length).toBe(N);
    const seqs = delivers.map((f) => (f.op === "deliver" ? f.seq : 0));
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
    alice.close();
    bob.close();
  });

  test("JSON: N sends, N msg frames", async () => {
    const bob = await loginJson("once-jbob");
    const alice = await loginJson("once-jalice");
    for (let i = 0; i < N; i++) {
      alice.send(JSON.stringify({ type: "send", id: `j${i}`, to: "once-jbob", body: `y${i}` }));
    }
    const got = (await collect(bob, N)).map((f) => JSON.parse(f as string));
    expect(got.filter((f) => f.type === "msg").length).toBe(N);
    alice.close();
    bob.close();
  });
});
