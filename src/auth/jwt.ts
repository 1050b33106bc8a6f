// HS256 JWTs, verified synchronously so a login frame is decided before the next frame on the
// same connection is read (clients pipeline login + send).

import { createHmac, timingSafeEqual } from "node:crypto";

export type TokenCheck = { ok: true; sub: string; role?: string } | { ok: false; reason: string };

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

export function signToken(secret: string, claims: { sub: string; exp?: number; role?: string; nbf?: number }): string {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = b64url(JSON.stringify(claims));
  const sig = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${sig}`;
}

export function verifyToken(secret: string, token: string, nowSec = Math.floor(Date.now() / 1000)): TokenCheck {
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, reason: "token is not a JWT" };
  const [h, p, s] = parts as [string, string, string];
  let header: unknown, payload: unknown;
  try {
    header = JSON.parse(Buffer.from(h, "base64url").toString("utf8"));
    payload = JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
  } catch {
    return { ok: false, reason: "token is not valid base64url JSON" };
  }
  if ((header as { alg?: unknown })?.alg !== "HS256") return { ok: false, reason: "token alg must be HS256" };
  const expected = createHmac("sha256", secret).update(`${h}.${p}`).digest();
  const given = Buffer.from(s, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: "bad token signature" };
  }
  const c = payload as { sub?: unknown; exp?: unknown; nbf?: unknown; role?: unknown };
  if (typeof c.sub !== "string" || c.sub === "") return { ok: false, reason: "token has no sub" };
  if (typeof c.exp === "number" && nowSec >= c.exp) return { ok: false, reason: "token expired" };
  if (typeof c.nbf === "number" && nowSec < c.nbf) return { ok: false, reason: "token not yet valid" };
  return { ok: true, sub: c.sub, ...(typeof c.role === "string" ? { role: c.role } : {}) };
}
