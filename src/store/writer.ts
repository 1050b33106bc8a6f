// The storage writer: the one thread that owns the SQLite file. Requests arrive from owner shards
// on their ports; writes are buffered and committed together (group commit: at most `batchRows`
// rows or every `flushMs`), and every reply that promises durability is sent after the COMMIT.

import { log } from "../observe/log.ts";
import type { SlotMetrics } from "../observe/metrics.ts";
import { assertNever } from "../assert.ts";
import { GARBAGE_LOG_EVERY, GARBAGE_LOG_FIRST, ROW_OVERHEAD_BYTES } from "../limits.ts";
import type {
  AppendReq,
  DeleteReq,
  FetchReq,
  LoadReq,
  PortMsg,
  RowsReply,
  SeenReq,
  StoredRow,
  WriterReq,
} from "../router/wire.ts";
import { isWriterReq } from "../router/wire.ts";
import type { InboxStore } from "./inbox-store.ts";

export interface WriterOptions {
  flushMs: number;
  batchRows: number;
}

/**
 * One shard's request port. Replies that answer a request go back on the link it came from, so a
 * restarted shard (new link) never receives commit counts meant for its dead predecessor.
 */
interface Link {
  shard: number;
  port: MessagePort;
}

type Op =
  | { k: Link; r: AppendReq }
  | { k: Link; r: LoadReq }
  | { k: Link; r: DeleteReq }
  | { k: Link; r: SeenReq };

export class Writer {
  private readonly links = new Map<number, Link>();
  private ops: Op[] = [];
  private rowsBuffered = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly byes = new Set<number>();
  onAllBye: (() => void) | null = null;
  expectedShards = 0;

  constructor(
    private readonly store: InboxStore,
    private readonly metrics: SlotMetrics,
    private readonly o: WriterOptions,
  ) {
    metrics.set("inboxRows", store.totalCount());
  }

  setPort(shard: number, port: MessagePort): void {
    const link: Link = { shard, port };
    this.links.set(shard, link);
    port.onmessage = (e) => this.receive(link, e.data);
  }

  /** Chaos: garbage as if it arrived on shard k's port. */
  inject(shard: number, batch: unknown): void {
    const link = this.links.get(shard);
    if (link) this.receive(link, batch);
  }

  receive(k: Link, batch: unknown): void {
    if (!Array.isArray(batch)) return this.garbage();
    for (const r of batch) {
      if (isWriterReq(r)) this.accept(k, r);
      else this.garbage();
    }
    if (this.rowsBuffered >= this.o.batchRows || this.o.flushMs === 0) this.flush();
    else if (this.ops.length && !this.timer) this.timer = setTimeout(() => this.flush(), this.o.flushMs);
  }

  /** Writes wait for the next group commit; reads flush first so they see every earlier write. */
  private accept(k: Link, r: WriterReq): void {
    switch (r.t) {
      case "append":
        this.ops.push({ k, r });
        this.rowsBuffered += r.rows.length;
        return;
      case "load":
        if (r.reserve > 0) this.ops.push({ k, r }); // a reservation must be durable before use
        else this.send(k, [this.readUser(r.user)]);
        return;
      case "delete":
        this.ops.push({ k, r });
        return;
      case "seen":
        this.ops.push({ k, r });
        return;
      case "fetch":
        this.metrics.add("fetches");
        return this.send(k, [this.readPage(r)]);
      case "bye":
        this.byes.add(k.shard);
        if (this.byes.size >= this.expectedShards) {
          this.flush();
          this.onAllBye?.();
        }
        return;
      default:
        return assertNever(r, "writer request");
    }
  }

  private readUser(user: string): PortMsg {
    this.flush();
    const u = this.store.getUser(user);
    const reserved = u?.seqReserved ?? 0;
    return { t: "loaded", user, seqBase: reserved + 1, seqLimit: reserved, lastSeen: u?.lastSeen ?? 0 };
  }

  /**
   * One backlog page. It is cut at its byte budget (always keeping one row) so a backlog of large
   * messages never crosses threads or fills sockets in 32 MB lumps.
   */
  private readPage(r: FetchReq): RowsReply {
    this.flush(); // a page must see every append sent before it
    const rows = this.store.fetch(r.user, r.after, r.limit);
    return { t: "rows", user: r.user, gen: r.gen, ...cutPage(rows, r.limit, r.maxBytes) };
  }

  private garbageCount = 0;
  private garbage(): void {
    this.metrics.add("garbage");
    if (this.garbageCount++ < GARBAGE_LOG_FIRST || this.garbageCount % GARBAGE_LOG_EVERY === 0) {
      log.warn("dropped invalid port message", { total: this.garbageCount });
    }
  }

  /** Commits everything buffered in one transaction, then sends the replies it promised. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.ops.length === 0) return;
    const ops = this.ops;
    this.ops = [];
    this.rowsBuffered = 0;
    // Replies keyed by link (answers to requests) and acks keyed by origin shard (current link).
    const out = new Map<Link, PortMsg[]>();
    const push = (k: Link | number, m: PortMsg) => {
      const link = typeof k === "number" ? this.links.get(k) : k;
      if (!link) return;
      let q = out.get(link);
      if (!q) out.set(link, q = []);
      q.push(m);
    };
    const appendsFrom = new Map<Link, number>();
    const t0 = performance.now();
    this.store.transaction(() => {
      let i = 0;
      while (i < ops.length) {
        const op = ops[i]!;
        if (op.r.t === "append") {
          // Merge consecutive appends into one multi-row insert.
          const group: { k: Link; r: AppendReq }[] = [];
          while (i < ops.length && ops[i]!.r.t === "append") group.push(ops[i++] as { k: Link; r: AppendReq });
          this.applyAppends(group, push);
          for (const g of group) appendsFrom.set(g.k, (appendsFrom.get(g.k) ?? 0) + 1);
          continue;
        }
        if (op.r.t === "load") {
          const range = this.store.reserveSeqs(op.r.user, op.r.reserve);
          const u = this.store.getUser(op.r.user);
          push(op.k, {
            t: "loaded",
            user: op.r.user,
            seqBase: range.first,
            seqLimit: range.last,
            lastSeen: u?.lastSeen ?? 0,
          });
        } else if (op.r.t === "delete") {
          this.metrics.add("rowsDeleted", this.store.deleteUpTo(op.r.user, op.r.upTo));
        } else if (op.r.t === "seen") {
          this.store.setLastSeen([{ user: op.r.user, ts: op.r.ts }]);
        }
        i++;
      }
    });
    this.metrics.add("commits");
    this.metrics.add("commitMsSum", performance.now() - t0);
    this.metrics.set("inboxRows", this.store.totalCount());
    for (const [k, n] of appendsFrom) push(k, { t: "committed", n });
    for (const [k, q] of out) this.send(k, q);
  }

  private applyAppends(group: { k: Link; r: AppendReq }[], push: (k: Link | number, m: PortMsg) => void): void {
    const rows: StoredRow[] = [];
    for (const g of group) for (const row of g.r.rows) rows.push(row);
    const results = this.store.append(rows);
    let idx = 0;
    for (const g of group) {
      const rejected: number[] = [];
      g.r.rows.forEach((row, j) => {
        const res = results[idx++];
        const o = g.r.o[j]!;
        const c = g.r.c[j]!;
        if (res === "stored") this.metrics.add("rowsAppended");
        else if (res === "duplicate") this.metrics.add("rowsDuplicate");
        if (res === "full") {
          this.metrics.add("rowsRejectedFull");
          rejected.push(row.seq);
          if (o >= 0) {
            push(o, {
              t: "sendError",
              conn: c,
              id: row.msgId,
              code: "INBOX_FULL",
              reason: `inbox of ${row.recipient} is full`,
            });
          }
        } else if (o >= 0) {
          push(o, { t: "sent", conn: c, id: row.msgId, status: res === "duplicate" ? "duplicate" : "stored" });
        }
      });
      if (rejected.length) push(g.k, { t: "rejected", user: g.r.rows[0]!.recipient, seqs: rejected });
    }
  }

  private send(k: Link, msgs: PortMsg[]): void {
    k.port.postMessage(msgs);
  }

  expire(now: number): void {
    this.flush();
    let n = 0;
    this.store.transaction(() => {
      n = this.store.expire(now);
    });
    if (n) {
      this.metrics.add("rowsExpired", n);
      log.info("expired inbox rows", { rows: n });
    }
  }
}

/** Cuts a page at its byte budget, keeping at least one row; `more` when anything was left out. */
export function cutPage(rows: StoredRow[], limit: number, maxBytes: number): { rows: StoredRow[]; more: boolean } {
  let bytes = 0;
  for (let i = 0; i < rows.length; i++) {
    bytes += rows[i]!.body.byteLength + ROW_OVERHEAD_BYTES;
    if (bytes > maxBytes && i > 0) return { rows: rows.slice(0, i), more: true };
  }
  return { rows, more: rows.length === limit };
}
