// JSON text frames (v1 semantics), validated with zod. Bodies are UTF-8 strings; a binary body
// that is not valid UTF-8 is delivered to a JSON client as base64 in `bodyB64`.

import { z } from "zod";
import { fromBase64, fromUtf8Lossy, utf8 } from "./bytes.ts";
import { CloseCode, ProtocolError } from "./errors.ts";
import type { ClientFrame, ServerFrame } from "./frames.ts";

const seq = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

const clientSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("login"),
    user: z.string(),
    token: z.string().max(8192).optional(),
    resume: seq.optional(),
  }).strict(),
  z.object({
    type: z.literal("send"),
    id: z.string().max(255),
    to: z.string(),
    body: z.string().optional(),
    bodyB64: z.string().optional(),
  }).strict(),
  z.object({ type: z.literal("ack"), seq }).strict(),
  z.object({ type: z.literal("status"), user: z.string() }).strict(),
  z.object({ type: z.literal("ping") }).strict(),
]);

function describe(issues: z.core.$ZodIssue[]): string {
  const i = issues[0];
  if (!i) return "invalid frame";
  const where = i.path.length ? i.path.join(".") : "frame";
  return `${where}: ${i.message}`;
}

export function decodeJsonClient(text: string, maxBody: number): ClientFrame {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ProtocolError("BAD_FRAME", "text frame is not valid JSON", CloseCode.INVALID_PAYLOAD);
  }
  const typ = (raw as { type?: unknown } | null)?.type;
  const parsed = clientSchema.safeParse(raw);
  if (!parsed.success) {
    const known = ["login", "send", "ack", "status", "ping"];
    if (typeof typ !== "string" || !known.includes(typ)) {
      throw new ProtocolError("UNKNOWN_OP", `unknown frame type ${JSON.stringify(typ ?? null)}`);
    }
    throw new ProtocolError("BAD_FRAME", describe(parsed.error.issues), CloseCode.INVALID_PAYLOAD);
  }
  const f = parsed.data;
  switch (f.type) {
    case "login":
      return {
        op: "login",
        user: f.user,
        proto: "json",
        ...(f.token ? { token: f.token } : {}),
        ...(f.resume ? { resume: f.resume } : {}),
      };
    case "send": {
      if ((f.body === undefined) === (f.bodyB64 === undefined)) {
        throw new ProtocolError("BAD_FRAME", "send needs exactly one of body or bodyB64", CloseCode.INVALID_PAYLOAD);
      }
      const body = f.body !== undefined ? utf8(f.body) : Uint8Array.from(Buffer.from(f.bodyB64!, "base64"));
      if (body.byteLength > maxBody) {
        throw new ProtocolError("PAYLOAD_TOO_LARGE", `body of ${body.byteLength} bytes exceeds ${maxBody}`);
      }
      return { op: "send", id: f.id, to: f.to, body };
    }
    case "ack":
      return { op: "ack", seq: f.seq };
    case "status":
      return { op: "status", user: f.user };
    case "ping":
      return { op: "ping" };
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export function encodeJsonServer(f: ServerFrame): string {
  switch (f.op) {
    case "deliver": {
      let body: string | undefined;
      try {
        body = strictUtf8.decode(f.body);
      } catch {
        body = undefined;
      }
      const base = { type: "msg", seq: f.seq, ts: f.ts, from: f.from, id: f.id };
      return JSON.stringify(
        body !== undefined ? { ...base, body } : { ...base, bodyB64: Buffer.from(f.body).toString("base64") },
      );
    }
    case "login_ok":
      return JSON.stringify({ type: "login_ok", user: f.user, now: f.now });
    case "sent":
      return JSON.stringify({ type: "sent", id: f.id, status: f.status });
    case "status":
      return JSON.stringify({ type: "status", user: f.user, online: f.online, lastSeen: f.lastSeen });
    case "error":
      return JSON.stringify({ type: "error", code: f.code, reason: f.reason, ...(f.id ? { id: f.id } : {}) });
    case "pong":
      return JSON.stringify({ type: "pong" });
  }
}

// ---- client side ----

export function encodeJsonClient(f: ClientFrame): string {
  switch (f.op) {
    case "login":
      return JSON.stringify({
        type: "login",
        user: f.user,
        ...(f.token ? { token: f.token } : {}),
        ...(f.resume ? { resume: f.resume } : {}),
      });
    case "send":
      return JSON.stringify({ type: "send", id: f.id, to: f.to, body: fromUtf8Lossy(f.body) });
    case "ack":
      return JSON.stringify({ type: "ack", seq: f.seq });
    case "status":
      return JSON.stringify({ type: "status", user: f.user });
    case "ping":
      return JSON.stringify({ type: "ping" });
    default:
      throw new Error(`op ${f.op} has no JSON encoding`);
  }
}

const serverSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("login_ok"), user: z.string(), now: z.number() }),
  z.object({
    type: z.literal("msg"),
    seq: z.number(),
    ts: z.number(),
    from: z.string(),
    id: z.string(),
    body: z.string().optional(),
    bodyB64: z.string().optional(),
  }),
  z.object({ type: z.literal("sent"), id: z.string(), status: z.enum(["delivered", "stored", "duplicate"]) }),
  z.object({ type: z.literal("status"), user: z.string(), online: z.boolean(), lastSeen: z.number() }),
  z.object({ type: z.literal("error"), code: z.string(), reason: z.string(), id: z.string().optional() }),
  z.object({ type: z.literal("pong") }),
]);

export function decodeJsonServer(text: string): ServerFrame {
  const f = serverSchema.parse(JSON.parse(text));
  switch (f.type) {
    case "msg":
      return {
        op: "deliver",
        seq: f.seq,
        ts: f.ts,
        from: f.from,
        id: f.id,
        body: f.body !== undefined ? utf8(f.body) : fromBase64(f.bodyB64 ?? ""),
      };
    case "login_ok":
      return { op: "login_ok", user: f.user, now: f.now };
    case "sent":
      return { op: "sent", id: f.id, status: f.status };
    case "status":
      return { op: "status", user: f.user, online: f.online, lastSeen: f.lastSeen };
    case "error":
      return { op: "error", code: f.code, reason: f.reason, ...(f.id ? { id: f.id } : {}) };
    case "pong":
      return { op: "pong" };
  }
}
