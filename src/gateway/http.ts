// HTTP routes (Hono) served by every shard: health, readiness, metrics, user status, server-side
// send, and the WebSocket upgrade decision. The frame path itself is Bun's native handlers.

import { Hono } from "hono";
import type { Server } from "bun";
import { z } from "zod";
import type { TokenVerifier } from "../auth/verifier.ts";
import type { Settings } from "../config/schema.ts";
import { HTTP_SEND_ACK_TIMEOUT_MS, RETRY_AFTER_S } from "../limits.ts";
import { type MetricsReader, renderPrometheus } from "../observe/metrics.ts";
import type { Signals } from "../observe/signals.ts";
import { userIdProblem } from "../protocol/index.ts";
import type { Admission } from "./admission.ts";
import { assetRoutes } from "./assets.ts";
import { adminRoutes } from "./admin.ts";
import type { Session, Sessions } from "./session.ts";

/** Per-socket data: the socket's session, made when it opens (the socket is its transport). */
export type WsData = Session | null;

export interface HttpDeps {
  settings: Settings;
  sessions: Sessions;
  reader: MetricsReader;
  signals: Signals;
  admission: Admission;
  maxConnections: number;
  version: string;
  /** Cluster mode: this node's view of the members, for GET /v1/cluster. */
  clusterView?: () => unknown;
  /** Cluster mode: the members' series appended to /metrics (labelled by node). */
  clusterMetrics?: () => string[];
}

const sendSchema = z.object({
  from: z.string().optional(),
  to: z.string(),
  id: z.string().max(255).optional(),
  body: z.string(),
}).strict();

type AuthResult = { ok: true; sub: string | null; admin: boolean } | { ok: false; status: 401; reason: string };

async function authorize(verifier: TokenVerifier | null, header: string | undefined): Promise<AuthResult> {
  if (!verifier) return { ok: true, sub: null, admin: true };
  const token = header?.startsWith("Bearer ") ? header.slice(7) : undefined;
  if (!token) return { ok: false, status: 401, reason: "missing bearer token" };
  const check = await verifier.verify(token);
  if (!check.ok) return { ok: false, status: 401, reason: check.reason };
  return { ok: true, sub: check.sub, admin: check.role === "admin" };
}

type App = Hono<{ Bindings: Server<WsData> }>;

export function createHttpApp(d: HttpDeps): App {
  const app: App = new Hono<{ Bindings: Server<WsData> }>();
  app.get("/healthz", (c) => c.json({ ok: true, version: d.version }));
  // Not ready while the store refuses messages: connections are still taken (live delivery and
  // reading stored inboxes go on), but a balancer should prefer another instance.
  app.get("/readyz", (c) => {
    if (!d.signals.ready()) return c.json({ ready: false }, 503);
    if (d.signals.storeFull()) return c.json({ ready: false, reason: "store full" }, 503);
    return c.json({ ready: true });
  });
  app.get(
    "/metrics",
    (c) =>
      c.text(
        renderPrometheus(d.reader, { iris_max_connections: d.maxConnections }, !!d.clusterView) +
          (d.clusterMetrics ? d.clusterMetrics().map((l) => l + "\n").join("") : ""),
        200,
        { "content-type": "text/plain; version=0.0.4" },
      ),
  );
  const view = d.clusterView;
  if (view) app.get("/v1/cluster", (c) => c.json(view()));
  addStatusRoute(app, d);
  addSendRoute(app, d);
  addUpgradeRoutes(app, d);
  app.route("/", assetRoutes()); // the browser SDK and the console page
  app.route("/", adminRoutes({ ...d, relay: d.sessions.admin, verifier: d.sessions.verifier })); // /v1/stats, /v1/users/:id…
  app.notFound((c) => c.json({ error: "NOT_FOUND", reason: `no route ${c.req.method} ${c.req.path}` }, 404));
  app.onError((e, c) => c.json({ error: "INTERNAL", reason: e.message }, 500));
  return app;
}

function addStatusRoute(app: App, d: HttpDeps): void {
  app.get("/v1/users/:id/status", async (c) => {
    const auth = await authorize(d.sessions.verifier, c.req.header("authorization"));
    if (!auth.ok) return c.json({ error: "AUTH_FAILED", reason: auth.reason }, auth.status);
    const user = c.req.param("id");
    const problem = userIdProblem(user);
    if (problem) return c.json({ error: "BAD_USER", reason: problem }, 400);
    const r = await new Promise<{ online: boolean; lastSeen: number }>((resolve) =>
      d.sessions.queryStatus(user, resolve)
    );
    return c.json({ user, online: r.online, lastSeen: r.lastSeen });
  });
}

type SendOutcome = { status: string; code?: string; reason?: string } | null;

/** Routes one message as `from` and waits for its ack (null when none came in time). */
function sendAndWait(d: HttpDeps, from: string, to: string, id: string, body: Uint8Array): Promise<SendOutcome> {
  let h = 0;
  return new Promise<SendOutcome>((resolve) => {
    const timer = setTimeout(() => {
      d.sessions.forgetSend(h);
      resolve(null);
    }, HTTP_SEND_ACK_TIMEOUT_MS);
    h = d.sessions.sendAs(from, to, id, body, (r) => {
      clearTimeout(timer);
      resolve(r.t === "sent" ? { status: r.status } : { status: "error", code: r.code, reason: r.reason });
    });
  });
}

function addSendRoute(app: App, d: HttpDeps): void {
  app.post("/v1/messages", async (c) => {
    const auth = await authorize(d.sessions.verifier, c.req.header("authorization"));
    if (!auth.ok) return c.json({ error: "AUTH_FAILED", reason: auth.reason }, auth.status);
    const raw = await c.req.json().catch(() => undefined);
    if (raw === undefined) return c.json({ error: "BAD_FRAME", reason: "body is not valid JSON" }, 400);
    const parsed = sendSchema.safeParse(raw);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      return c.json({ error: "BAD_FRAME", reason: `${i.path.join(".") || "body"}: ${i.message}` }, 400);
    }
    const m = parsed.data;
    const from = m.from ?? auth.sub ?? "system";
    if (auth.sub !== null && !auth.admin && from !== auth.sub) {
      return c.json({ error: "AUTH_FAILED", reason: "only an admin token may send as another user" }, 403);
    }
    for (const [what, u] of [["from", from], ["to", m.to]] as const) {
      const problem = userIdProblem(u);
      if (problem) return c.json({ error: "BAD_USER", reason: `${what}: ${problem}` }, 400);
    }
    const body = new TextEncoder().encode(m.body);
    if (body.byteLength > d.settings.maxPayload) {
      return c.json({ error: "PAYLOAD_TOO_LARGE", reason: `body exceeds ${d.settings.maxPayload} bytes` }, 413);
    }
    const id = m.id ?? crypto.randomUUID();
    const result = await sendAndWait(d, from, m.to, id, body);
    if (result === null) {
      return c.json({ id, status: "pending", reason: "no ack within 10 s; retry with the same id" }, 202);
    }
    if (result.status === "error") {
      return c.json({ id, error: result.code, reason: result.reason }, result.code === "INBOX_FULL" ? 507 : 400);
    }
    return c.json({ id, status: result.status });
  });
}

/** The path of an absolute request URL ("http://h:p/ws?x" → "/ws") without building a URL object. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

/**
 * The WebSocket upgrade, before Hono: a socket costs no router pass, context or response objects
 * (their garbage was ~0.14 KB of RSS per open socket after a connection burst, issue 14). Returns
 * null for anything else (Hono serves it), undefined once upgraded, or the refusal.
 */
export function upgradeWebSocket(admission: Admission, req: Request, srv: Server<WsData>): Response | undefined | null {
  if (req.method !== "GET" || req.headers.get("upgrade")?.toLowerCase() !== "websocket") return null;
  const path = pathOf(req.url);
  if (path !== "/ws" && path !== "/") return null;
  const why = admission.admit();
  if (why) {
    return new Response(`${why}; retry later\n`, { status: 503, headers: { "retry-after": String(RETRY_AFTER_S) } });
  }
  if (srv.upgrade(req, { data: null })) return undefined; // the session is made at open
  admission.settle();
  return new Response("websocket upgrade failed\n", { status: 426 });
}

function addUpgradeRoutes(app: App, d: HttpDeps): void {
  // Upgrades are taken by upgradeWebSocket before Hono; these routes answer the plain GETs.
  app.get("/ws", (c) => c.text("this endpoint speaks WebSocket\n", 426));
  app.get("/", (c) => c.text(`iris ${d.version}: connect a WebSocket to /ws; see /healthz, /metrics\n`));
}
