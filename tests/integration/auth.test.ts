// JWT auth: accepted, rejected (bad signature, wrong user, expired, missing), v0 refused unless
// allowed, HTTP API guarded.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { signToken } from "../../src/auth/jwt.ts";
import { IrisClient } from "../../src/client/index.ts";
import { encodeV0Login } from "../../src/protocol/v0.ts";
import { RawSocket } from "../helpers/raw.ts";
import { type RunningServer, startServer } from "../helpers/server.ts";

const SECRET = "test-secret-0123456789";
let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ env: { IRIS_JWT_SECRET: SECRET } });
});
afterAll(async () => {
  await server.stop();
});

const token = (sub: string, extra: Record<string, unknown> = {}) =>
  signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 60, ...extra });

async function loginResult(user: string, tok?: string): Promise<string> {
  const c = new IrisClient({ url: server.url, user, ...(tok ? { token: tok } : {}), autoReconnect: false });
  try {
    await c.connect();
    c.close();
    return "ok";
  } catch (e) {
    return (e as { code: string }).code;
  }
}

describe("auth", () => {
  test("a valid token for the user is accepted", async () => {
    expect(await loginResult("ann", token("ann"))).toBe("ok");
  });
  test("missing, forged, other-user and expired tokens are rejected", async () => {
    expect(await loginResult("ann")).toBe("AUTH_FAILED");
    expect(await loginResult("ann", signToken("another-secret-xxxxxx", { sub: "ann" }))).toBe("AUTH_FAILED");
    expect(await loginResult("ann", token("bob"))).toBe("AUTH_FAILED");
    expect(await loginResult("ann", signToken(SECRET, { sub: "ann", exp: 1 }))).toBe("AUTH_FAILED");
    expect(await loginResult("ann", "not.a.jwt")).toBe("AUTH_FAILED");
    const m = await (await fetch(`${server.http}/metrics`)).text();
    expect(m).toMatch(/^iris_auth_failures_total [5-9]\d*$/m);
    expect(m).not.toContain("iris_cluster_"); // a single node shows no cluster figures
  });
  test("v0 logins (no token) are refused with 1008 while auth is on", async () => {
    const s = await RawSocket.open(server.url);
    s.send(encodeV0Login("seed-user"));
    expect(await s.closed()).toBe(1008);
  });
  test("the HTTP API needs a bearer token; only admins send as others", async () => {
    expect((await fetch(`${server.http}/v1/users/ann/status`)).status).toBe(401);
    const ok = await fetch(`${server.http}/v1/users/ann/status`, {
      headers: { authorization: `Bearer ${token("x")}` },
    });
    expect(ok.status).toBe(200);
    const post = (tok: string, from: string) =>
      fetch(`${server.http}/v1/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${tok}`, "content-type": "application/json" },
        body: JSON.stringify({ from, to: "ann", body: "hi" }),
      });
    expect((await post(token("carl"), "dora")).status).toBe(403);
    expect((await post(token("carl"), "carl")).status).toBe(200);
    expect((await post(token("ops", { role: "admin" }), "dora")).status).toBe(200);
  });
});
