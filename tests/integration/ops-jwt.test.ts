// Logins with identity-provider keys: RS256/ES256 tokens checked against a PEM public key and a
// JWKS served by a local HTTP server; every classic forgery refused with AUTH_FAILED; key rotation
// picked up on an unknown kid at a bounded rate; a pipelined login + send keeps frame order.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from "jose";
import { signToken } from "../../src/auth/jwt.ts";
import { RawSocket } from "../helpers/raw.ts";
import { type RunningServer, startServer } from "../helpers/server.ts";

const ISS = "https://idp.example.test/";
const AUD = "iris";
const SECRET = "an-hs256-secret-of-enough-length";
type Pair = Awaited<ReturnType<typeof generateKeyPair>>;

let dir = "";
let rsa: Pair, ec: Pair, fileKey: Pair, stranger: Pair, rotated: Pair;
let filePem = "";
const jwks: { keys: JWK[] } = { keys: [] };
let jwksHits = 0;
let idp: ReturnType<typeof Bun.serve> | null = null;
let server: RunningServer | null = null;

async function jwk(p: Pair, kid: string, alg: string): Promise<JWK> {
  return { ...(await exportJWK(p.publicKey)), kid, alg, use: "sig" };
}

function token(p: Pair, alg: string, o: { kid?: string; sub?: string; iss?: string; aud?: string; exp?: number } = {}) {
  const jwt = new SignJWT({}).setProtectedHeader({ alg, ...(o.kid ? { kid: o.kid } : {}) })
    .setSubject(o.sub ?? "alice").setIssuer(o.iss ?? ISS).setAudience(o.aud ?? AUD).setIssuedAt();
  jwt.setExpirationTime(o.exp ?? Math.floor(Date.now() / 1000) + 300);
  return jwt.sign(p.privateKey);
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const claims = () => ({ sub: "alice", iss: ISS, aud: AUD, exp: Math.floor(Date.now() / 1000) + 300 });

let lastReason = "";
/** Logs in over raw JSON and returns the first answer's type, or its error code (reason kept). */
async function login(url: string, tok: string, user = "alice"): Promise<string> {
  const s = await RawSocket.open(url);
  s.send(JSON.stringify({ type: "login", user, token: tok }));
  const f = JSON.parse(String(await s.next())) as { type: string; code?: string; reason?: string };
  s.close();
  lastReason = f.reason ?? "";
  return f.type === "error" ? f.code! : f.type;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "iris-jwt-"));
  [rsa, ec, fileKey, stranger, rotated] = await Promise.all([
    generateKeyPair("RS256", { extractable: true }),
    generateKeyPair("ES256", { extractable: true }),
    generateKeyPair("RS256", { extractable: true }),
    generateKeyPair("RS256", { extractable: true }),
    generateKeyPair("ES256", { extractable: true }),
  ]);
  jwks.keys = [await jwk(rsa, "r1", "RS256"), await jwk(ec, "e1", "ES256")];
  idp = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => {
      jwksHits++;
      return Response.json(jwks);
    },
  });
  filePem = await exportSPKI(fileKey.publicKey);
  writeFileSync(join(dir, "pub.pem"), filePem);
  server = await startServer({
    args: [
      "--jwks-url",
      `http://127.0.0.1:${idp.port}/jwks`,
      "--jwt-public-key",
      join(dir, "pub.pem"),
      "--jwt-issuer",
      ISS,
      "--jwt-audience",
      AUD,
      "--jwks-refresh-ms",
      "300",
    ],
  });
});
afterAll(async () => {
  await server?.kill();
  idp?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

describe("identity-provider tokens", () => {
  test("valid RS256 and ES256 from the JWKS, and RS256 from the PEM key, are accepted", async () => {
    expect(await login(server!.url, await token(rsa, "RS256", { kid: "r1" }))).toBe("login_ok");
    expect(await login(server!.url, await token(ec, "ES256", { kid: "e1" }))).toBe("login_ok");
    expect(await login(server!.url, await token(fileKey, "RS256"))).toBe("login_ok");
  });

  test("forgeries and wrong claims are refused with AUTH_FAILED", async () => {
    const url = server!.url;
    const cases: [string, string, RegExp][] = [
      ["wrong key (kid r1, signed by another key)", await token(stranger, "RS256", { kid: "r1" }), /signature/],
      ["wrong kid", await token(rsa, "RS256", { kid: "nope" }), /no key matches/],
      ["alg none", `${b64({ alg: "none", typ: "JWT" })}.${b64(claims())}.`, /algorithm not accepted/],
      [
        "HS256 with the public key as secret",
        (() => {
          const h = b64({ alg: "HS256", typ: "JWT" });
          const p = b64(claims());
          return `${h}.${p}.${createHmac("sha256", filePem).update(`${h}.${p}`).digest("base64url")}`;
        })(),
        /algorithm not accepted/,
      ],
      ["wrong issuer", await token(rsa, "RS256", { kid: "r1", iss: "https://evil.test/" }), /claim iss/],
      ["wrong audience", await token(rsa, "RS256", { kid: "r1", aud: "someone-else" }), /claim aud/],
      ["expired", await token(rsa, "RS256", { kid: "r1", exp: Math.floor(Date.now() / 1000) - 60 }), /expired/],
      ["token for another user", await token(rsa, "RS256", { kid: "r1", sub: "mallory" }), /for mallory/],
    ];
    for (const [name, tok, why] of cases) {
      expect(`${name}: ${await login(url, tok)}`).toBe(`${name}: AUTH_FAILED`);
      expect(`${name}: ${lastReason}`).toMatch(why);
    }
  });

  test("a rotated key (unknown kid) is fetched; unknown kids refetch at a bounded rate", async () => {
    await Bun.sleep(350); // past the refresh interval since the last fetch
    jwks.keys.push(await jwk(rotated, "e2", "ES256"));
    expect(await login(server!.url, await token(rotated, "ES256", { kid: "e2" }))).toBe("login_ok");
    const before = jwksHits;
    const forged = await Promise.all(
      Array.from({ length: 30 }, (_, i) => token(rsa, "RS256", { kid: `unknown-${i}` })),
    );
    for (const t of forged) expect(await login(server!.url, t)).toBe("AUTH_FAILED");
    // 30 unknown kids within well under a second: at most a couple of fetches, not 30.
    expect(jwksHits - before).toBeLessThanOrEqual(3);
  });

  test("a pipelined login + send keeps frame order; a failed login runs none of what follows", async () => {
    const s = await RawSocket.open(server!.url);
    s.send(JSON.stringify({ type: "login", user: "alice", token: await token(ec, "ES256", { kid: "e1" }) }));
    s.send(JSON.stringify({ type: "send", id: "m1", to: "bob", body: "hi" }));
    const first = JSON.parse(String(await s.next()));
    const second = JSON.parse(String(await s.next()));
    expect(first.type).toBe("login_ok");
    expect(second).toMatchObject({ type: "sent", id: "m1", status: "stored" });
    s.close();

    const bad = await RawSocket.open(server!.url);
    bad.send(JSON.stringify({ type: "login", user: "alice", token: await token(stranger, "RS256", { kid: "r1" }) }));
    bad.send(JSON.stringify({ type: "send", id: "m2", to: "bob", body: "forged" }));
    const f = JSON.parse(String(await bad.next()));
    expect(f).toMatchObject({ type: "error", code: "AUTH_FAILED" });
    await bad.closed();
    expect(bad.frames.map(String).some((x) => x.includes("m2"))).toBe(false);
  });

  test("the admin API needs an admin token from the same sources (not open without --jwt-secret)", async () => {
    const url = `${server!.http}/v1/stats`;
    expect((await fetch(url)).status).toBe(401);
    const user = await token(rsa, "RS256", { kid: "r1" });
    expect((await fetch(url, { headers: { authorization: `Bearer ${user}` } })).status).toBe(403);
    const admin = await new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "ES256", kid: "e1" })
      .setSubject("ops").setIssuer(ISS).setAudience(AUD).setExpirationTime("5m").sign(ec.privateKey);
    expect((await fetch(url, { headers: { authorization: `Bearer ${admin}` } })).status).toBe(200);
    const forged = await new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "RS256", kid: "r1" })
      .setSubject("ops").setIssuer(ISS).setAudience(AUD).setExpirationTime("5m").sign(stranger.privateKey);
    expect((await fetch(url, { headers: { authorization: `Bearer ${forged}` } })).status).toBe(401);
  });

  test("the HTTP API accepts the same tokens", async () => {
    const tok = await token(rsa, "RS256", { kid: "r1" });
    const ok = await fetch(`${server!.http}/v1/users/bob/status`, { headers: { authorization: `Bearer ${tok}` } });
    expect(ok.status).toBe(200);
    const forged = await token(stranger, "RS256", { kid: "r1" });
    const no = await fetch(`${server!.http}/v1/users/bob/status`, { headers: { authorization: `Bearer ${forged}` } });
    expect(no.status).toBe(401);
  });

  test("with an HS256 secret too: HS256 works, the public key as an HMAC secret does not", async () => {
    const s = await startServer({ args: ["--jwt-secret", SECRET, "--jwt-public-key", join(dir, "pub.pem")] });
    try {
      expect(await login(s.url, signToken(SECRET, { sub: "alice" }))).toBe("login_ok");
      const h = b64({ alg: "HS256", typ: "JWT" });
      const p = b64({ sub: "alice" });
      const forged = `${h}.${p}.${createHmac("sha256", filePem).update(`${h}.${p}`).digest("base64url")}`;
      expect(await login(s.url, forged)).toBe("AUTH_FAILED");
      expect(await login(s.url, await token(fileKey, "RS256"))).toBe("login_ok");
    } finally {
      await s.kill();
    }
  });

  test("a bad --jwt-public-key or --jwks-url is one line, exit 2", async () => {
    const { runOnce } = await import("../helpers/run-once.ts");
    writeFileSync(join(dir, "bad.pem"), "not a key");
    const r = await runOnce(["--jwt-public-key", join(dir, "bad.pem")]);
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toContain("--jwt-public-key");
    const r2 = await runOnce(["--jwks-url", "ftp://x"]);
    expect(r2.code).toBe(2);
    expect(r2.lines[0]).toContain("--jwks-url");
  });
});
