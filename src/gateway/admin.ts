// The admin HTTP API (what the console calls): overview stats, one user's state, disconnect a
// user, purge a user's inbox. With auth on (--jwt-secret, --jwt-public-key or --jwks-url) every
// route needs a token, checked like a login token, whose role is "admin".
// Actions are logged with the user and what they changed. Documented in docs/OPERATIONS.md.

import { Hono } from "hono";
import type { Context } from "hono";
import type { TokenVerifier } from "../auth/verifier.ts";
import type { Settings } from "../config/schema.ts";
import { log } from "../observe/log.ts";
import { type MetricsReader, NON_SHARD_SLOTS } from "../observe/metrics.ts";
import { userIdProblem } from "../protocol/index.ts";
import type { AdminReq, InspectReply } from "../router/wire.ts";
import type { AdminRelay } from "./admin-relay.ts";
import { collectStats } from "./admin-stats.ts";

export interface AdminDeps {
  settings: Settings;
  /** The shard's token verifier (null: auth is off). */
  verifier: TokenVerifier | null;
  reader: MetricsReader;
  relay: AdminRelay;
  maxConnections: number;
  version: string;
  clusterView?: () => unknown;
}

/** Null when the request may proceed, else why not (and the status to answer with). */
export async function adminRefusal(
  verifier: TokenVerifier | null,
  header: string | undefined,
): Promise<{ status: 401 | 403; reason: string } | null> {
  if (!verifier) return null;
  const token = header?.startsWith("Bearer ") ? header.slice(7) : undefined;
  if (!token) return { status: 401, reason: "missing bearer token (an admin token is required)" };
  const check = await verifier.verify(token);
  if (!check.ok) return { status: 401, reason: check.reason };
  if (check.role !== "admin") return { status: 403, reason: 'token is not an admin token (needs "role":"admin")' };
  return null;
}

/** The JSON shape of one user, as GET /v1/users/:id answers it. */
export function userView(r: InspectReply, now: number) {
  return {
    user: r.user,
    online: r.online,
    where: r.online ? { shard: r.where } : null,
    phase: r.phase,
    lastSeen: r.lastSeen || null,
    inbox: {
      depth: r.inbox.rows,
      bytes: r.inbox.bytes,
      oldestTs: r.inbox.oldestTs || null,
      oldestAgeMs: r.inbox.oldestTs ? Math.max(0, now - r.inbox.oldestTs) : null,
    },
    pendingDeliveries: r.pending,
    heldBack: r.holdback,
  };
}

export function adminRoutes(d: AdminDeps): Hono {
  const app = new Hono();
  app.use("/v1/stats", async (c, next) => guard(c, next));
  app.use("/v1/users/:id", async (c, next) => guard(c, next));
  app.use("/v1/users/:id/disconnect", async (c, next) => guard(c, next));
  app.use("/v1/users/:id/inbox", async (c, next) => guard(c, next));

  async function guard(c: Context, next: () => Promise<void>) {
    const no = await adminRefusal(d.verifier, c.req.header("authorization"));
    if (no) return c.json({ error: "AUTH_FAILED", reason: no.reason }, no.status);
    await next();
  }

  app.get("/v1/stats", (c) =>
    c.json(collectStats({
      reader: d.reader,
      dataDir: d.settings.dataDir,
      shards: d.reader.slots - NON_SHARD_SLOTS,
      maxConnections: d.maxConnections,
      version: d.version,
      ...(d.clusterView ? { clusterView: d.clusterView } : {}),
    })));

  /** Validates the id, asks the owner, and maps "no answer" and "never seen" to errors. */
  async function ask(c: Context, op: AdminReq["t"]): Promise<Response | InspectReply> {
    const user = c.req.param("id")!;
    const problem = userIdProblem(user);
    if (problem) return c.json({ error: "BAD_USER", reason: problem }, 400);
    const r = await d.relay.ask(op, user);
    if (!r) return c.json({ error: "TIMEOUT", reason: "the user's owner thread did not answer; retry" }, 504);
    if (!r.known) {
      return c.json({ error: "UNKNOWN_USER", reason: `no user ${JSON.stringify(user)} on this server` }, 404);
    }
    return r;
  }

  app.get("/v1/users/:id", async (c) => {
    const r = await ask(c, "inspect");
    return r instanceof Response ? r : c.json(userView(r, Date.now()));
  });

  app.post("/v1/users/:id/disconnect", async (c) => {
    const r = await ask(c, "disconnect");
    if (r instanceof Response) return r;
    log.info("admin: disconnect user", { user: r.user, wasOnline: r.acted });
    return c.json({ disconnected: r.acted, ...userView(r, Date.now()) });
  });

  app.delete("/v1/users/:id/inbox", async (c) => {
    // Look first so the log and the answer can say how much was purged.
    const before = await ask(c, "inspect");
    if (before instanceof Response) return before;
    const r = await ask(c, "purge");
    if (r instanceof Response) return r;
    log.info("admin: purge inbox", { user: r.user, rows: before.inbox.rows, bytes: before.inbox.bytes });
    return c.json({ purgedRows: before.inbox.rows, ...userView(r, Date.now()) });
  });
  return app;
}
