// Admission control and auto-tune: past the planned max connections new upgrades get 503 with
// Retry-After while existing clients keep working; under a low open-files limit the server caps
// itself and refuses cleanly instead of failing with EMFILE.

import { afterEach, describe, expect, test } from "bun:test";
import { IrisClient, type IrisMessage } from "../../src/client/index.ts";
import { BINARY, type RunningServer, startServer, until } from "../helpers/server.ts";

let server: RunningServer | null = null;
afterEach(async () => {
  await server?.stop();
  server = null;
});

async function upgradeStatus(url: string): Promise<{ status: number; retryAfter: string | null; body: string }> {
  const res = await fetch(url.replace("ws://", "http://"), {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  return { status: res.status, retryAfter: res.headers.get("retry-after"), body: await res.text() };
}

async function openClients(url: string, n: number, prefix: string): Promise<IrisClient[]> {
  const out: IrisClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = new IrisClient({ url, user: `${prefix}${i}`, autoReconnect: false });
    await c.connect();
    out.push(c);
  }
  return out;
}

describe("admission", () => {
  test("--auto-tune --max-conns 40: the 41st upgrade gets 503 + Retry-After; existing clients work", async () => {
    server = await startServer({ args: ["--auto-tune", "--max-conns", "40"] });
    expect(server.output()).toContain("explicit flag");
    const clients = await openClients(server.url, 40, "adm");
    const r = await upgradeStatus(server.url);
    expect(r.status).toBe(503);
    expect(r.retryAfter).toBe("5");
    expect(r.body).toContain("capacity");
    const got: IrisMessage[] = [];
    clients[1]!.onMessage((m) => got.push(m));
    expect(await clients[0]!.send("adm1", "still here")).toMatch(/delivered|stored/);
    await until(() => got.length === 1, "delivery among admitted clients");
    clients[39]!.close();
    await until(async () => {
      const m = await (await fetch(`${server!.http}/metrics`)).text();
      return /^iris_connections 39$/m.test(m);
    }, "the closed slot to free up");
    const late = new IrisClient({ url: server.url, user: "late", autoReconnect: false });
    await late.connect(); // admitted again
    late.close();
    for (const c of clients) c.close();
    const m = await (await fetch(`${server.http}/metrics`)).text();
    expect(m).toMatch(/^iris_rejected_upgrades_total [1-9]/m);
  });

  test("under ulimit -n 256 the server starts, caps itself and refuses cleanly", async () => {
    server = await startServer({ wrap: ["prlimit", "--nofile=256:256", "--"] });
    const cap = Number(server.output().match(/max_conns=(\d+)/)![1]);
    expect(cap).toBeLessThan(256);
    expect(cap).toBeGreaterThan(100);
    const clients: IrisClient[] = [];
    let refused = 0;
    for (let i = 0; i < cap + 20; i++) {
      const c = new IrisClient({ url: server.url, user: `lim${i}`, autoReconnect: false });
      try {
        await c.connect();
        clients.push(c);
      } catch {
        refused++;
      }
    }
    expect(clients.length).toBe(cap);
    expect(refused).toBe(20);
    expect((await fetch(`${server.http}/healthz`)).status).toBe(200);
    expect(server.output()).not.toContain("EMFILE");
    for (const c of clients) c.close();
  });

  test("--auto-tune --dry-run --json prints the plan and exits 0", () => {
    const p = Bun.spawnSync([BINARY, "--auto-tune", "--dry-run", "--json"], { stdout: "pipe", stderr: "pipe" });
    expect(p.exitCode).toBe(0);
    const plan = JSON.parse(p.stdout.toString());
    expect(plan.maxConnections).toBeGreaterThan(0);
    expect(plan.shards).toBeGreaterThanOrEqual(1);
    expect(plan.heapEnv.BUN_JSC_forceRAMSize).toMatch(/^\d+$/);
  });
});
