// The owner's side of the admin API: inspect a user, disconnect them, or purge their inbox. The
// owner acts first (so the answer reflects the action), then asks the writer to count the inbox.
// That count travels on the same FIFO port as the owner's appends and deletes, and the writer
// commits its buffer before counting, so a purge is always visible in its own reply.

import { assertNever } from "../assert.ts";
import type { AdminReq, InboxCountReply, PortMsg, WriterReq } from "./wire.ts";

/** What the owner holds in memory for one user (null: no state here, e.g. offline and swept). */
export interface OwnerUserView {
  where: number; // socket shard, -1 when offline
  phase: string; // the connection's drain phase

  lastSeen: number;
  pending: number;
  holdback: number;
}

export interface OwnerAdminIO {
  toShard(shard: number, m: PortMsg): void;
  toWriter(m: WriterReq): void;
  view(user: string): OwnerUserView | null;
  /** Closes the user's connection, if any; true when there was one. */
  disconnect(user: string): boolean;
}

/** Deletes every stored row: above any seq the owner could have handed out. */
const ALL_ROWS = Number.MAX_SAFE_INTEGER;

export class OwnerAdmin {
  private nextId = 1;
  /** Requests waiting on the writer's count, by the id sent with it. */
  private readonly waiting = new Map<number, { m: AdminReq; acted: boolean }>();

  constructor(private readonly io: OwnerAdminIO) {}

  onRequest(m: AdminReq): void {
    let acted = false;
    switch (m.t) {
      case "inspect":
        break;
      case "disconnect":
        acted = this.io.disconnect(m.user);
        break;
      case "purge":
        this.io.toWriter({ t: "delete", user: m.user, upTo: ALL_ROWS });
        acted = true;
        break;
      default:
        assertNever(m.t, "admin request");
    }
    const id = this.nextId++;
    this.waiting.set(id, { m, acted });
    this.io.toWriter({ t: "countInbox", user: m.user, req: id });
  }

  onCount(r: InboxCountReply): void {
    const w = this.waiting.get(r.req);
    if (!w || w.m.user !== r.user) return;
    this.waiting.delete(r.req);
    const v = this.io.view(r.user);
    this.io.toShard(w.m.shard, {
      t: "inspectReply",
      req: w.m.req,
      user: r.user,
      known: r.known || v !== null,
      online: v !== null && v.where >= 0,
      where: v?.where ?? -1,
      phase: v?.phase ?? "offline",
      lastSeen: Math.max(v?.lastSeen ?? 0, r.lastSeen),
      pending: v?.pending ?? 0,
      holdback: v?.holdback ?? 0,
      inbox: { rows: r.rows, bytes: r.bytes, oldestTs: r.oldestTs },
      acted: w.acted,
    });
  }

  /** The writer restarted: counts in flight died with it; ask again (a repeated purge is harmless). */
  writerRestarted(): void {
    for (const [id, w] of this.waiting) {
      if (w.m.t === "purge") this.io.toWriter({ t: "delete", user: w.m.user, upTo: ALL_ROWS });
      this.io.toWriter({ t: "countInbox", user: w.m.user, req: id });
    }
  }
}
