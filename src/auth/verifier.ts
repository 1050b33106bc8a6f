// Login tokens from any configured source: HS256 with --jwt-secret (checked synchronously, as
// before), and RS*/PS*/ES*/EdDSA with --jwt-public-key (a PEM file) or --jwks-url (an identity
// provider's key set, cached, re-fetched for an unknown kid at most once per --jwks-refresh-ms).
// The algorithm a token may use is decided by the key it is checked against, never by the token:
// an HS256 token is only ever checked with the secret, so a public key can never be used as an
// HMAC secret, and `alg: none` is never accepted. The cryptography is the `jose` library's.

import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type { JWTPayload, JWTVerifyOptions } from "jose";
import { type TokenCheck, verifyToken } from "./jwt.ts";

export interface AuthSettings {
  jwtSecret?: string | undefined;
  jwtPublicKey?: string | undefined;
  jwksUrl?: string | undefined;
  jwtIssuer?: string | undefined;
  jwtAudience?: string | undefined;
  jwksRefreshMs: number;
}

/** Asymmetric algorithms accepted from a JWKS (each key's own type narrows this further). */
const JWKS_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
/** How long a JWKS fetch may take before the login fails. */
const JWKS_TIMEOUT_MS = 5000;
/** Keys from a JWKS are re-fetched at least this often even when every kid is known. */
const JWKS_MAX_AGE_MS = 10 * 60_000;

export function authEnabled(s: AuthSettings): boolean {
  return !!(s.jwtSecret || s.jwtPublicKey || s.jwksUrl);
}

/** The algorithms a public key can verify, from its type (and curve). */
export function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
    case "rsa-pss":
      return ["PS256", "PS384", "PS512"];
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === "prime256v1" ? ["ES256"] : curve === "secp384r1" ? ["ES384"] : ["ES512"];
    }
    case "ed25519":
      return ["EdDSA"];
    default:
      throw new Error(`unsupported public key type ${key.asymmetricKeyType ?? "unknown"}`);
  }
}

/** Reads a PEM public key (or certificate); throws a one-line reason. */
export function loadPublicKey(path: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new Error(`${path} is not a PEM public key or certificate`);
  }
  algorithmsFor(key);
  return key;
}

/** The header's alg and kid, read only to pick the key; the signature check decides. */
function header(token: string): { alg: string; kid: string | null } | null {
  const dot = token.indexOf(".");
  if (dot <= 0) return null;
  try {
    const h = JSON.parse(Buffer.from(token.slice(0, dot), "base64url").toString("utf8")) as Record<string, unknown>;
    if (typeof h?.alg !== "string") return null;
    return { alg: h.alg, kid: typeof h.kid === "string" ? h.kid : null };
  } catch {
    return null;
  }
}

function payloadOf(token: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
  } catch {
    return {};
  }
}

/** iss/aud checks for HS256 tokens (jose does them for the others). */
function claimsProblem(s: AuthSettings, c: Record<string, unknown>): string | null {
  if (s.jwtIssuer && c.iss !== s.jwtIssuer) return "token issuer does not match";
  if (s.jwtAudience) {
    const aud = Array.isArray(c.aud) ? c.aud : [c.aud];
    if (!aud.includes(s.jwtAudience)) return "token audience does not match";
  }
  return null;
}

type Jose = typeof import("jose");
/**
 * jose is loaded on the first public-key login, not at start: importing it costs ~190 ms of
 * start-up per thread (measured), which every restart would pay even with HS256 or no auth.
 */
let josePromise: Promise<Jose> | null = null;
const loadJose = () => (josePromise ??= import("jose"));

function reasonOf(jose: Jose, e: unknown): string {
  const x = jose.errors;
  if (e instanceof x.JWTExpired) return "token expired";
  if (e instanceof x.JWTClaimValidationFailed) return `token claim ${e.claim} is not accepted`;
  if (e instanceof x.JWKSNoMatchingKey) return "no key matches the token's kid";
  if (e instanceof x.JWSSignatureVerificationFailed) return "bad token signature";
  if (e instanceof x.JOSEAlgNotAllowed) return "token algorithm not accepted";
  if (e instanceof x.JWKSTimeout) return "key set fetch timed out";
  return "token rejected";
}

function toCheck(p: JWTPayload): TokenCheck {
  if (typeof p.sub !== "string" || p.sub === "") return { ok: false, reason: "token has no sub" };
  const role = (p as { role?: unknown }).role;
  return { ok: true, sub: p.sub, ...(typeof role === "string" ? { role } : {}) };
}

type Resolver = ReturnType<Jose["createRemoteJWKSet"]>;

export class TokenVerifier {
  private readonly key: KeyObject | null;
  private readonly keyAlgs: string[];
  /** The key set resolver (with its cache), made on first use. */
  private jwks: Resolver | null = null;
  private readonly options: JWTVerifyOptions;

  constructor(private readonly s: AuthSettings) {
    this.key = s.jwtPublicKey ? loadPublicKey(s.jwtPublicKey) : null;
    this.keyAlgs = this.key ? algorithmsFor(this.key) : [];
    this.options = {
      ...(s.jwtIssuer ? { issuer: s.jwtIssuer } : {}),
      ...(s.jwtAudience ? { audience: s.jwtAudience } : {}),
    };
  }

  /** HS256 answers at once; public-key tokens answer with a promise. */
  verify(token: string): TokenCheck | Promise<TokenCheck> {
    const h = header(token);
    if (h === null) return { ok: false, reason: "token is not a JWT" };
    const alg = h.alg;
    if (alg === "HS256") {
      if (!this.s.jwtSecret) return { ok: false, reason: "token algorithm not accepted" };
      const check = verifyToken(this.s.jwtSecret, token);
      const problem = check.ok ? claimsProblem(this.s, payloadOf(token)) : null;
      return problem ? { ok: false, reason: problem } : check;
    }
    // A kid names a key in the key set; without one (or without a key set) the PEM key is used.
    if (this.s.jwksUrl && (h.kid !== null || !this.key)) return this.check(token, "jwks", JWKS_ALGORITHMS);
    if (this.key && this.keyAlgs.includes(alg)) return this.check(token, this.key, this.keyAlgs);
    return { ok: false, reason: "token algorithm not accepted" };
  }

  private resolver(jose: Jose): Resolver {
    return this.jwks ??= jose.createRemoteJWKSet(new URL(this.s.jwksUrl!), {
      cooldownDuration: this.s.jwksRefreshMs,
      cacheMaxAge: JWKS_MAX_AGE_MS,
      timeoutDuration: JWKS_TIMEOUT_MS,
    });
  }

  private async check(token: string, key: KeyObject | "jwks", algorithms: string[]): Promise<TokenCheck> {
    const jose = await loadJose();
    try {
      const { payload } = key === "jwks"
        ? await jose.jwtVerify(token, this.resolver(jose), { ...this.options, algorithms })
        : await jose.jwtVerify(token, key, { ...this.options, algorithms });
      return toCheck(payload);
    } catch (e) {
      return { ok: false, reason: reasonOf(jose, e) };
    }
  }
}
