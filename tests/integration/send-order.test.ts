// Per-sender order through refusals (docs/PROTOCOL.md, "Order after a refusal"): a sender whose
// sends are refused with RATE_LIMITED (the same back-pressure path as SERVER_BUSY and STORE_FULL)
// keeps sending; every message still reaches each recipient once and in send order. Before the
// SDK's lanes, each refused send was retried on its own back-off while newer ones went through.

import { afterEach, describe, expect, test } from "bun:test";
import { IrisClient } from "../../src/client/index.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

let server: RunningServer | null = null;
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

describe("per-sender order through refusals", () => {
  test("a rate-limited sender's messages reach each recipient once, in send order", async () => {
    // 100 msgs/s, burst 20: of 240 pipelined sends most are refused, some several times.
    server = await startServer({ args: ["--rate-msgs", "100", "--rate-burst", "20"] });
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
