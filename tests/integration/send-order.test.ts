// Per-sender order through refusals (docs/PROTOCOL.md, "Order after a refusal"): a sender whose
// sends are refused with RATE_LIMITED (the same back-pressure path as SERVER_BUSY and STORE_FULL)
// keeps sending; every message still reaches each recipient once and in send order. Before the
// SDK's lanes, each refused send was retried on its own back-off while newer ones went through.

import { afterEach, describe, expect, test } from "bun:test";
import { IrisClient } from "../../src/client/index.ts";
import type { ServerFrame } from "../../src/protocol/frames.ts";
import { decodeV1ServerMessage, encodeV1Client } from "../../src/protocol/v1.ts";
import { V1_FLAG_ORDERED } from "../../src/protocol/v1-bundle.ts";
import { RawSocket } from "../helpers/raw.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

let server: RunningServer | null = null;
/** At 10 msgs/s and a burst of 5, long enough for the bucket to fill up again. */
const TOKENS_BACK_MS = 600;
const clients: IrisClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server?.stop();
  server = null;
});

async function online(user: string, got?: string[]): Promise<IrisClient> {
  const c = new IrisClient({ url: server!.url, user, resendAfterMs: 500 });
  if (got) c.onMessage((m) => got.push(m.text()));
  clients.push(c);
  await c.connect();
  return c;
}

/** A raw v1 connection (no SDK, no bundles): every answer to a send, by id. */
async function rawSender(user: string, flags?: number) {
  const s = await RawSocket.open(server!.url);
  const answers = new Map<string, string>();
  let loggedIn = false;
  const drain = () => {
    for (const data of s.frames.splice(0)) {
      for (const f of decodeV1ServerMessage(data as Uint8Array) as ServerFrame[]) {
        if (f.op === "login_ok") loggedIn = true;
        if (f.op === "sent") answers.set(f.id, f.status);
        if (f.op === "error" && f.id) answers.set(f.id, f.code);
      }
    }
  };
  s.send(encodeV1Client({ op: "login", user, proto: "v1", ...(flags !== undefined ? { flags } : {}) }));
  await until(() => (drain(), loggedIn), "login");
  const send = (id: string, to: string) =>
    s.send(encodeV1Client({ op: "send", id, to, body: new TextEncoder().encode(id) }));
  /** The answers to `ids`, once each has one (and forgets them, so a retry is answered afresh). */
  const answered = async (ids: string[]) => {
    await until(() => (drain(), ids.every((id) => answers.has(id))), `answers to ${ids.join(",")}`);
    const out = ids.map((id) => answers.get(id)!);
    for (const id of ids) answers.delete(id);
    return out;
  };
  return { s, send, answered };
}

describe("per-sender order through refusals", () => {
  test("after a refusal the server refuses later sends to that recipient until the refused one is retried", async () => {
    // 10 msgs/s: a token comes back only every 100 ms, so the 8 pipelined sends below find the
    // bucket empty after 5 even on a loaded machine (at 100 msgs/s a 10 ms stall let m6 through).
    server = await startServer({ args: ["--rate-msgs", "10", "--rate-burst", "5"] });
    const { s, send, answered } = await rawSender("fence-s");
    for (let i = 1; i <= 8; i++) send(`m${i}`, "fence-r");
    const first = await answered(["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]);
    expect(first.slice(0, 5).every((a) => a === "stored")).toBe(true);
    expect(first.slice(5)).toEqual(["RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED"]);
    await Bun.sleep(TOKENS_BACK_MS); // tokens are back: only the fence can refuse now
    send("m9", "fence-r"); // written before the client "read" m6's refusal: it must not overtake m6
    send("q1", "fence-q"); // another recipient is not fenced
    expect(await answered(["m9", "q1"])).toEqual(["RATE_LIMITED", "stored"]);
    await Bun.sleep(TOKENS_BACK_MS); // the bucket full again for the four retries
    for (const id of ["m6", "m7", "m8", "m9"]) send(id, "fence-r"); // the retry, in order, lifts the fence
    expect(await answered(["m6", "m7", "m8", "m9"])).toEqual(["stored", "stored", "stored", "stored"]);
    s.close();
  });

  test("a later send is refused while an earlier one to that recipient is unanswered, even once the fence has lapsed", async () => {
    // The fence holds FENCE_MS (1 s): a client (or a starved server reading it) that lets a later
    // send through after that used to have it stored ahead of the refused one. The send's link to
    // its predecessor (gateway/send-chain.ts) holds for as long as the predecessor is unanswered.
    server = await startServer({ args: ["--rate-msgs", "10", "--rate-burst", "5"] });
    const { s, send, answered } = await rawSender("link-s", V1_FLAG_ORDERED); // "I retry refused sends in order"
    for (let i = 1; i <= 7; i++) send(`m${i}`, "link-r");
    const first = await answered(["m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
    expect(first.slice(0, 5).every((a) => a === "stored")).toBe(true);
    expect(first.slice(5)).toEqual(["RATE_LIMITED", "RATE_LIMITED"]);
    await Bun.sleep(1300); // the fence has lapsed and the bucket is full again
    send("m8", "link-r"); // m6 and m7 are still unanswered for good: m8 must not be stored first
    expect(await answered(["m8"])).toEqual(["SERVER_BUSY"]);
    for (const id of ["m6", "m7", "m8"]) send(id, "link-r"); // the retries, in order: nothing fences them
    expect(await answered(["m6", "m7", "m8"])).toEqual(["stored", "stored", "stored"]);
    s.close();
    const got: string[] = [];
    await online("link-r", got);
    await until(() => got.length >= 8, "the recipient's backlog");
    expect(got).toEqual(["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]);
  });

  test("without the ORDERED flag a refused send is not waited for once the fence has lapsed (a client may give it up)", async () => {
    server = await startServer({ args: ["--rate-msgs", "10", "--rate-burst", "5"] });
    const { s, send, answered } = await rawSender("giveup-s");
    for (let i = 1; i <= 7; i++) send(`m${i}`, "giveup-r");
    const first = await answered(["m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
    expect(first.slice(5)).toEqual(["RATE_LIMITED", "RATE_LIMITED"]);
    await Bun.sleep(1300);
    send("m8", "giveup-r"); // m6 and m7 given up
    expect(await answered(["m8"])).toEqual(["stored"]);
    s.close();
  });

  test("a rate-limited sender's messages reach each recipient once, in send order", async () => {
    // 200 msgs/s, burst 20: of 240 pipelined sends most are refused, some several times.
    server = await startServer({ args: ["--rate-msgs", "200", "--rate-burst", "20"] });
    const gotA: string[] = [];
    const gotB: string[] = [];
    await online("order-a", gotA);
    await online("order-b", gotB);
    const s = await online("order-s");
    const sent = Array.from({ length: 240 }, (_, i) => (i % 3 === 2 ? `b${i}` : `a${i}`));
    const acks = sent.map((text) => s.send(text.startsWith("a") ? "order-a" : "order-b", text));
    // Later sends keep arriving while earlier ones are refused and waiting.
    await Bun.sleep(300);
    const late = Array.from({ length: 30 }, (_, i) => `a${240 + i}`);
    acks.push(...late.map((text) => s.send("order-a", text)));
    sent.push(...late);
    expect((await Promise.all(acks)).every((st) => st === "delivered" || st === "stored")).toBe(true);
    const wantA = sent.filter((t) => t.startsWith("a"));
    const wantB = sent.filter((t) => t.startsWith("b"));
    await until(() => gotA.length >= wantA.length && gotB.length >= wantB.length, "every message", 15_000);
    expect(gotA).toEqual(wantA);
    expect(gotB).toEqual(wantB);
  });
});
