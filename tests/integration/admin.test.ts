// The admin HTTP API against the real binary (2 shards, so owner requests cross threads): stats,
// one user's state online and offline, disconnect, purge, errors, and the admin-token check.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { signToken } from "../../src/auth/jwt.ts";
import { IrisClient, type IrisMessage } from "../../src/client/index.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

const SECRET = "admin-test-secret-0123456789";
const token = (sub: string, role?: string) =>
  signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 60, ...(role ? { role } : {}) });

describe("admin API (no auth)", () => {
  let server: RunningServer;
  const clients: IrisClient[] = [];
  const api = async (method: string, path: string) => {
    const r = await fetch(server.http + path, { method });
    return { status: r.status, body: await r.json() as Record<string, any> };
  };
  async function client(user: string, opts: Partial<ConstructorParameters<typeof IrisClient>[0]> = {}) {
    const c = new IrisClient({ url: server.url, user, ...opts });
    const got: IrisMessage[] = [];
    c.onMessage((m) => got.push(m));
    clients.push(c);
    await c.connect();
    return { c, got };
  }
  beforeAll(async () => {
    server = await startServer({ shards: 2, args: ["--log-level", "info"] });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    expect(await server.stop()).toBe(0);
  });

  test("stats: connections follow clients; memory, disk and latency figures are real", async () => {
    const s0 = (await api("GET", "/v1/stats")).body;
    expect(s0.connections).toBe(0);
    const a = await client("st-a");
    const b = await client("st-b");
    await a.c.send("st-b", "x");
    await until(() => b.got.length === 1, "delivery");
    const s1 = (await api("GET", "/v1/stats")).body;
    expect(s1.connections).toBe(2);
    expect(s1.totals.msgsIn).toBeGreaterThanOrEqual(1);
    expect(s1.totals.logins).toBeGreaterThanOrEqual(2);
    expect(s1.memory.rssBytes).toBeGreaterThan(10 * 1048576);
    expect(s1.memory.spillBytes).toBeGreaterThan(0);
    expect(s1.memory.refuseBytes).toBeGreaterThan(s1.memory.spillBytes);
    expect(s1.store.freeDiskBytes).toBeGreaterThan(0);
    expect(s1.latency.p50Ms).toBeGreaterThan(0);
    // The send was acked "delivered" after b's ack: one send→ack sample, slower than its route.
    expect(s1.ackLatency.counts.reduce((x: number, y: number) => x + y, 0)).toBeGreaterThanOrEqual(1);
    expect(s1.ackLatency.p50Ms).toBeGreaterThan(0);
    expect(s1.threads.shards).toBe(2);
    a.c.close();
    b.c.close();
    await until(async () => (await api("GET", "/v1/stats")).body.connections === 0, "connections back to 0");
  });

  test("an offline user's inbox depth and oldest age; an online user's shard and unacked deliveries", async () => {
    const s = await client("in-sender");
    for (let i = 0; i < 5; i++) expect(await s.c.send("in-off", `m${i}`)).toBe("stored");
    const off = await api("GET", "/v1/users/in-off");
    expect(off.status).toBe(200);
    expect(off.body.online).toBe(false);
    expect(off.body.where).toBeNull();
    expect(off.body.inbox.depth).toBe(5);
    expect(off.body.inbox.bytes).toBe(10);
    expect(off.body.inbox.oldestAgeMs).toBeGreaterThanOrEqual(0);

    // A recipient that never acks (ack delay of a minute) holds its deliveries unacked in memory.
    const r = await client("in-on", { ackDelayMs: 60_000 });
    for (let i = 0; i < 3; i++) void s.c.send("in-on", `n${i}`);
    await until(() => r.got.length === 3, "3 live deliveries");
    const on = await api("GET", "/v1/users/in-on");
    expect(on.body.online).toBe(true);
    expect(on.body.where.shard).toBeGreaterThanOrEqual(0);
    expect(on.body.pendingDeliveries).toBe(3);
    expect(on.body.lastSeen).toBeNull(); // never went offline yet
  });

  test("disconnect closes the user's connection and is logged; purge empties the inbox", async () => {
    const u = await client("dc-user", { autoReconnect: false });
    const closed = new Promise<void>((res) => u.c.onState((st) => st === "offline" && res()));
    // LOGIN_OK comes from the socket's shard; the owner (maybe another shard) hears the attach just after.
    await until(async () => (await api("GET", "/v1/users/dc-user")).body.online === true, "the owner to see dc-user");
    const d = await api("POST", "/v1/users/dc-user/disconnect");
    expect(d.status).toBe(200);
    expect(d.body.disconnected).toBe(true);
    await closed;
    await until(() => server.output().includes("admin: disconnect user user=dc-user"), "the log line");
    // The owner forgets the connection when the socket's close reaches it (a detach that crosses
    // threads after the client saw the close): until then a second disconnect still finds it.
    await until(
      async () => (await api("POST", "/v1/users/dc-user/disconnect")).body.disconnected === false,
      "a second disconnect to find no connection",
    );

    const s = await client("pg-sender");
    for (let i = 0; i < 4; i++) await s.c.send("pg-off", `p${i}`);
    expect((await api("GET", "/v1/users/pg-off")).body.inbox.depth).toBe(4);
    const p = await api("DELETE", "/v1/users/pg-off/inbox");
    expect(p.status).toBe(200);
    expect(p.body.purgedRows).toBe(4);
    expect(p.body.inbox.depth).toBe(0);
    expect((await api("GET", "/v1/users/pg-off")).body.inbox.depth).toBe(0);
    const r = await client("pg-off");
    await Bun.sleep(300);
    expect(r.got.length).toBe(0); // nothing left to deliver
    expect(server.output()).toContain("admin: purge inbox user=pg-off rows=4");
  });

  test("bad ids get 400, unknown users 404, each with a JSON reason", async () => {
    const long = await api("GET", `/v1/users/${"x".repeat(300)}`);
    expect(long.status).toBe(400);
    expect(long.body.error).toBe("BAD_USER");
    const ctl = await api("POST", "/v1/users/a%01b/disconnect");
    expect(ctl.status).toBe(400);
    for (const [m, p] of [["GET", ""], ["POST", "/disconnect"], ["DELETE", "/inbox"]] as const) {
      const r = await api(m, `/v1/users/nobody-ever${p}`);
      expect(r.status).toBe(404);
      expect(r.body.error).toBe("UNKNOWN_USER");
      expect(r.body.reason).toContain("nobody-ever");
    }
  });
});

describe("admin API with --jwt-secret", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ env: { IRIS_JWT_SECRET: SECRET } });
  });
  afterAll(async () => {
    await server.stop();
  });

  test("no token 401, a user's token 403, an admin token 200", async () => {
    const get = (tok?: string) =>
      fetch(`${server.http}/v1/stats`, tok ? { headers: { authorization: `Bearer ${tok}` } } : {});
    const none = await get();
    expect(none.status).toBe(401);
    expect((await none.json()).error).toBe("AUTH_FAILED");
    const user = await get(token("ann"));
    expect(user.status).toBe(403);
    expect((await user.json()).reason).toContain("admin");
    const admin = await get(token("ops", "admin"));
    expect(admin.status).toBe(200);
    expect((await admin.json()).connections).toBe(0);
    const del = await fetch(`${server.http}/v1/users/ann/inbox`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${token("ann")}` },
    });
    expect(del.status).toBe(403);
  });
});
