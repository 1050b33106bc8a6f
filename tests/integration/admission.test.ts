// Admission control and auto-tune: past the planned max connections new upgrades get 503 with
// Retry-After while existing clients keep working; under a low open-files limit the server caps
// itself and refuses cleanly instead of failing with EMFILE.

import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { IrisClient, type IrisMessage } from "../../src/client/index.ts";
import {
  ALLOCATOR_HOLES_ENV_VAR,
  ALLOCATOR_HOLES_INTERVAL_ENV_VAR,
  HEAP_ENV_VAR,
  WARM_UP_ENV_VAR,
} from "../../tune/plan.ts";
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

  /** The environment of a running process, from /proc (what execve gave it). */
  function environOf(pid: number): Record<string, string> {
    const raw = readFileSync(`/proc/${pid}/environ`, "utf8");
    return Object.fromEntries(
      raw.split("\0").filter(Boolean).map((kv) => {
        const i = kv.indexOf("=");
        return [kv.slice(0, i), kv.slice(i + 1)];
      }),
    );
  }

  function dryRunPlan() {
    const p = Bun.spawnSync([BINARY, "--auto-tune", "--dry-run", "--json"], { stdout: "pipe" });
    return JSON.parse(p.stdout.toString()) as {
      heapEnv: Record<string, string>;
      allocatorEnv: Record<string, string>;
    };
  }

  test("--auto-tune re-executes once, same pid, with the plan's heap hint and allocator setting", async () => {
    const plan = dryRunPlan();
    server = await startServer({ args: ["--auto-tune"] });
    const env = environOf(server.proc.pid);
    expect(env.IRIS_HEAP_APPLIED).toBe("1");
    for (const [k, v] of Object.entries(plan.heapEnv)) expect(env[k]).toBe(v);
    for (const [k, v] of Object.entries(plan.allocatorEnv)) expect(env[k]).toBe(process.env[k] ?? v);
    expect(env[WARM_UP_ENV_VAR]).toBe(process.env[WARM_UP_ENV_VAR] ?? "false");
    // The purge's pace yields to a plan that keeps the holes, as to an operator who names them.
    const keepsHoles =
      (process.env[ALLOCATOR_HOLES_ENV_VAR] ?? plan.allocatorEnv[ALLOCATOR_HOLES_ENV_VAR]) !== undefined;
    expect(env[ALLOCATOR_HOLES_INTERVAL_ENV_VAR]).toBe(
      process.env[ALLOCATOR_HOLES_INTERVAL_ENV_VAR] ?? (keepsHoles ? undefined : "1000"),
    );
    const ws = new IrisClient({ url: server.url, user: "tuned", autoReconnect: false });
    await ws.connect();
    ws.close();
  });

  test("the default start re-executes once, same pid, with JSC's block warm-up off and the hole purge paced; an operator's value is kept", async () => {
    server = await startServer({});
    const env = environOf(server.proc.pid);
    expect(env.IRIS_HEAP_APPLIED).toBe("1");
    expect(env[WARM_UP_ENV_VAR]).toBe("false");
    expect(env[ALLOCATOR_HOLES_INTERVAL_ENV_VAR]).toBe(process.env[ALLOCATOR_HOLES_INTERVAL_ENV_VAR] ?? "1000");
    expect(env[HEAP_ENV_VAR]).toBeUndefined(); // the plan's heap hint is --auto-tune's only
    const ws = new IrisClient({ url: server.url, user: "plain-start", autoReconnect: false });
    await ws.connect();
    ws.close();
    await server.stop();
    server = await startServer({ env: { [WARM_UP_ENV_VAR]: "true" } });
    expect(environOf(server.proc.pid)[WARM_UP_ENV_VAR]).toBe("true");
  });

  test("--auto-tune keeps an allocator setting the operator's environment names", async () => {
    const key = ALLOCATOR_HOLES_ENV_VAR;
    server = await startServer({ args: ["--auto-tune"], env: { [key]: "1" } });
    const env = environOf(server.proc.pid);
    expect(env.IRIS_HEAP_APPLIED).toBe("1");
    expect(env[key]).toBe("1");
    // Naming the purge itself also keeps Bun's pace for it.
    expect(env[ALLOCATOR_HOLES_INTERVAL_ENV_VAR]).toBe(process.env[ALLOCATOR_HOLES_INTERVAL_ENV_VAR]);
  });
});
