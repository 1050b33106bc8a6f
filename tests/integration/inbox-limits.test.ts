// Offline inbox bounds: a full inbox refuses with INBOX_FULL (the sender knows the message was not
// accepted), and stored messages older than the TTL expire.

import { afterEach, describe, expect, test } from "bun:test";
import { IrisClient, type IrisMessage } from "../../src/client/index.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

let server: RunningServer | null = null;
afterEach(async () => {
  await server?.stop();
  server = null;
});

describe("inbox limits", () => {
  test("the (max-inbox + 1)th message to an offline user gets INBOX_FULL", async () => {
    server = await startServer({ args: ["--max-inbox", "5"] });
    const s = new IrisClient({ url: server.url, user: "filler" });
    await s.connect();
    for (let i = 0; i < 5; i++) expect(await s.send("full-box", `m${i}`, { id: `id${i}` })).toBe("stored");
    const err = await s.send("full-box", "one too many").then(() => null, (e) => e as { code: string; id: string });
    expect(err?.code).toBe("INBOX_FULL");
    // A retry of an accepted message is recognised as a duplicate, not refused as full.
    expect(await s.send("full-box", "m0", { id: "id0" })).toBe("duplicate");
    const r = new IrisClient({ url: server.url, user: "full-box" });
    const got: IrisMessage[] = [];
    r.onMessage((m) => got.push(m));
    await r.connect();
    await until(() => got.length === 5, "the five stored messages");
    await Bun.sleep(100);
    expect(got.map((m) => m.text())).toEqual(["m0", "m1", "m2", "m3", "m4"]);
    // Once drained and acked, the inbox has room again.
    r.close();
    await Bun.sleep(100);
    expect(await s.send("full-box", "room again")).toBe("stored");
    s.close();
  });

  test("stored messages older than --inbox-ttl expire", async () => {
    server = await startServer({ args: ["--inbox-ttl", "1"] });
    const s = new IrisClient({ url: server.url, user: "ttl-sender" });
    await s.connect();
    expect(await s.send("ttl-box", "short-lived")).toBe("stored");
    await until(
      async () => {
        const m = await (await fetch(`${server!.http}/metrics`)).text();
        return /^iris_store_rows_expired_total [1-9]/m.test(m);
      },
      "the row to expire",
      10_000,
    );
    const r = new IrisClient({ url: server.url, user: "ttl-box" });
    const got: IrisMessage[] = [];
    r.onMessage((m) => got.push(m));
    await r.connect();
    await Bun.sleep(300);
    expect(got).toEqual([]);
    r.close();
    s.close();
  });
});
