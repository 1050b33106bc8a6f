// The storage writer: the one thread that owns the SQLite file. Requests arrive from owner shards
// on their ports; writes are buffered and committed together (group commit: at once from
// `batchRows` rows, else after `flushMs`), and every reply that promises durability is sent
// after the COMMIT.

import { FramePageBuilder, PageScratch } from "../router/frame-page.ts";
import { log } from "../observe/log.ts";
import { ORDER_TRACE, orderTrace } from "../observe/order-trace.ts";
import type { SlotMetrics } from "../observe/metrics.ts";
import { assertNever } from "../assert.ts";
import {
  DEDUPE_EXPIRE_BATCH,
  DEDUPE_EXPIRE_BATCHES_PER_RUN,
  GARBAGE_LOG_EVERY,
  GARBAGE_LOG_FIRST,
  INBOX_COMPACT_CHUNK,
  INBOX_COMPACT_IDLE_MS,
  INBOX_COMPACT_MAX_WAIT_MS,
  PAGE_SCRATCH_MAX_BYTES,
  ROW_OVERHEAD_BYTES,
} from "../limits.ts";
import type {
  AppendReq,
  ConfirmReq,
  CountInboxReq,
  DeleteReq,
  FetchReq,
  FilterImageReq,
  LoadReq,
  LookupReq,
  PortMsg,
  RememberReq,
  RowsReply,
  ScanSentReq,
  SeenReq,
  SentKey,
  SentPageReply,
  StoredRow,
  WriterReq,
} from "../router/wire.ts";
import { ownerOf } from "../router/hash.ts";
import { filterImageProblem } from "../router/sent-filter.ts";
import type { TakenImage } from "./filter-images.ts";
import { boxOf, confirmMissNotice, confirmMissReply, isWriterReq, refusalShard } from "../router/wire.ts";
import { type PackedRemember, REMEMBER_FIELDS } from "../router/packed-keys.ts";
import { isPackedAppends, isPackedAppendsShape, unpackAppends } from "../router/packed-appends.ts";
import { type PackedAcks, StoredAcksBuilder } from "../router/packed-acks.ts";
import type { InboxStore } from "./inbox-store.ts";
import type { FrameRow } from "./inbox-log.ts";
import { PageAhead, type PageRead } from "./page-ahead.ts";
import { pageOfBlobs, pageOfBodyBlobs } from "../router/blob-page.ts";
import { describeError } from "../observe/errors.ts";
import { appendRefusal, Backoff, failureCode, planFailure } from "./write-failure.ts";

/** Least time between TRUNCATE checkpoints while the disk is below its reserve. */
const RECLAIM_EVERY_MS = 1000;
/**
 * Page bytes a link's held read replies may reach before they are posted (see `held`). Logins'
 * short pages still share one message; a batch of fetches for large backlogs no longer builds all
 * its pages before the first is posted: 50 readers' pages of 64 KiB rows held at once took the
 * full-size chaos `oom` to 600-740 MiB RSS against its 480 MiB bound (4 runs in 7; session 48).
 */
const HELD_REPLY_MAX_BYTES = 256 * 1024;

/** The bytes a read reply carries in buffers (a page's frames or bodies; 0 for any other reply). */
function replyBytes(m: PortMsg): number {
  if (m.t !== "rows") return 0;
  return m.frames?.frames.byteLength ?? m.packed?.bodies.byteLength ?? 0;
}

export interface WriterOptions {
  flushMs: number;
  batchRows: number;
  /** How long an accepted (recipient, sender, id) counts for dedupe, in ms. */
  dedupeWindowMs: number;
}

/**
 * One shard's request port. Replies that answer a request go back on the link it came from, so a
 * restarted shard (new link) never receives commit counts meant for its dead predecessor.
 */
interface Link {
  shard: number;
  port: MessagePort;
}

/** Requests that wait for the next group commit (reads of other kinds are answered at once). */
type Queued = AppendReq | LoadReq | DeleteReq | SeenReq | RememberReq | PackedRemember | LookupReq | ConfirmReq;
/** skip: a later delete of the same user, at least as far, was queued after it (it does the work). */
/** `refused`: an append with a bad row (see receiveBatch), answered and counted, never stored. */
type Op = { k: Link; r: Queued; skip?: boolean; refused?: boolean };
type Push = (k: Link | number, m: PortMsg) => void;

export class Writer {
  private readonly links = new Map<number, Link>();
  private ops: Op[] = [];
  private rowsBuffered = 0;
  /** A drain's next page, read ahead (page-ahead.ts). */
  private readonly ahead = new PageAhead();
  /** The page builder's working buffer, reused from page to page (frame-page.ts PageScratch). */
  private readonly pageScratch = new PageScratch(PAGE_SCRATCH_MAX_BYTES);
  /** Pages to read ahead once this batch of requests is done, by user (readAheadDue). */
  private readonly aheadDue = new Map<string, AheadDue>();
  /** Appends queued since the last commit: a page read commits them first. */
  private appendsQueued = 0;
  /** The last delete queued per user since the last commit (a cumulative ack's watermark). */
  private deletesQueued = new Map<string, Op>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly byes = new Set<number>();
  onAllBye: (() => void) | null = null;
  /** Shards' filter images and the log id each ends at, saved once every shard said goodbye. */
  private images: { r: FilterImageReq; afterId: number }[] = [];
  expectedShards = 0;
  /** Requests of failed transactions, run again when the back-off timer fires. */
  private retryOps: { k: Link; r: WriterReq }[] = [];
  /** Dedupe records of failed transactions, already counted as committed: written on retry. */
  private retryRemembers: RememberReq[] = [];
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly backoff = new Backoff();
  /**
   * Read replies (a box's load, a backlog page, ...) made while a batch is received, per link:
   * posted together when the batch is done, not one message each (10,000 logins made 10,000 page
   * replies, each its own postMessage on both threads, issue 14), and always ahead of anything
   * else sent on that link (see send), so a link's replies keep the order they were made in.
   */
  private readonly held = new Map<Link, { msgs: PortMsg[]; bytes: number }>();
  /** receive() calls under way (a retry receives again from a timer, never inside one). */
  private receiving = 0;

  constructor(
    private readonly store: InboxStore,
    private readonly metrics: SlotMetrics,
    private readonly o: WriterOptions,
  ) {
    metrics.set("inboxRows", store.totalCount());
    metrics.set("dedupeRows", store.sent.count()); // else 0 until the first commit after a start
    this.publishRunFilters();
  }

  setPort(shard: number, port: MessagePort): void {
    const link: Link = { shard, port };
    if (ORDER_TRACE) orderTrace("w-port", "", "", "", `shard=${shard}`);
    this.links.set(shard, link);
    port.onmessage = (e) => this.receive(link, e.data);
  }

  /** Chaos: garbage as if it arrived on shard k's port. */
  inject(shard: number, batch: unknown): void {
    const link = this.links.get(shard);
    if (link) this.receive(link, batch);
  }

  receive(k: Link, batch: unknown): void {
    this.receiving++;
    try {
      this.receiveBatch(k, batch);
    } finally {
      if (--this.receiving === 0) this.sendHeld();
    }
  }

  private receiveBatch(k: Link, batch: unknown): void {
    if (!Array.isArray(batch)) return this.garbage();
    for (const r of batch) {
      if (isPackedAppends(r)) {
        for (const a of unpackAppends(r)) this.accept(k, a); // queued only: an append never throws
        continue;
      }
      if (isPackedAppendsShape(r)) {
        // A bad row: dropped whole, the pack took every append beside it, unstored and uncounted
        // (the owner's commit count then slipped). Each append is checked alone instead.
        for (const a of unpackAppends(r)) {
          if (isWriterReq(a)) this.accept(k, a);
          else this.refuseMalformed(k, a);
        }
        continue;
      }
      if (!isWriterReq(r)) {
        this.garbage(r);
        continue;
      }
      try {
        this.accept(k, r);
      } catch (e) {
        // A read that failed (I/O error): keep the request and run it again after a back-off.
        this.failed([{ k, r }], e);
      }
    }
    // The reads' replies go before this batch's commit (a page does not wait on it) and before
    // the reads ahead (a drain's page goes out while its next one is read).
    this.sendHeld();
    if (this.rowsBuffered >= this.o.batchRows || this.o.flushMs === 0) this.flush();
    else if (this.ops.length && !this.timer) this.timer = setTimeout(() => this.flush(), this.o.flushMs);
    this.readAheadDue();
    this.compactWhenIdle();
  }

  private compactTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the last backlog page was asked for. */
  private lastFetchAt = 0;
  /** Since when acked rows have waited without a chunk removed (null: none wait). */
  private compactWaitingSince: number | null = null;

  /** (Re)starts the quiet-time clock for removing acked rows (inbox-log.ts), if any wait. */
  private compactWhenIdle(): void {
    if (this.compactTimer) clearTimeout(this.compactTimer);
    this.compactTimer = null;
    if (!this.store.inboxCompactDue()) {
      this.compactWaitingSince = null;
      return;
    }
    this.compactWaitingSince ??= performance.now();
    this.compactTimer = setTimeout(() => {
      this.compactTimer = null;
      if (this.compactChunk()) this.compactWhenIdle();
    }, INBOX_COMPACT_IDLE_MS);
  }

  /** Removes one chunk of acked rows in its own transaction; true if more wait. */
  private compactChunk(): boolean {
    this.compactWaitingSince = performance.now();
    if (!this.store.inboxCompactDue()) return false;
    try {
      this.metrics.add("rowsCompacted", this.store.transaction(() => this.store.compactInbox(INBOX_COMPACT_CHUNK)));
      return this.store.inboxCompactDue();
    } catch (e) {
      // The rows stay deleted under their watermark; the next quiet moment tries again.
      log.warn("removing acked inbox rows failed; retried later", { error: describeError(e) });
      return false;
    }
  }

  /** Writes wait for the next group commit; reads flush first so they see every earlier write. */
  private accept(k: Link, r: WriterReq): void {
    switch (r.t) {
      case "append":
        this.ahead.clear(); // a drain's next page must see it
        this.ops.push({ k, r });
        this.rowsBuffered += r.rows.length;
        this.appendsQueued++;
        return;
      case "delete":
        return this.queueDelete(k, r);
      case "load":
        if (r.reserve > 0) this.ops.push({ k, r }); // a reservation must be durable before use
        else this.reply(k, this.readUser(r.user, r.box));
        return;
      case "seen":
      case "lookup":
      case "confirm":
        this.ops.push({ k, r });
        return;
      case "remember":
        this.ops.push({ k, r });
        this.rowsBuffered += r.keys.length;
        return;
      case "rememberPacked": // stored as it came (sent-ids.ts rememberPacked)
        this.ops.push({ k, r });
        this.rowsBuffered += r.nums.length / REMEMBER_FIELDS;
        return;
      case "scanSent":
        return this.reply(k, this.readSentPage(r));
      case "filterImage":
        // Where its keys end is now: the shard's keys sent before it are committed (ids up to
        // here, in its filter) or queued (ids past here when they commit); those after it too.
        // Written once every shard said goodbye and the last commit is made (see bye).
        try {
          this.images.push({ r, afterId: this.store.sent.lastId });
        } catch (e) {
          log.warn("the dedupe filter image is not kept; the next start rebuilds it", { error: describeError(e) });
        }
        return;
      case "fetch":
        this.metrics.add("fetches");
        return this.reply(k, this.readPage(r));
      case "countInbox":
        return this.reply(k, this.countInbox(r));
      case "bye":
        this.byes.add(k.shard);
        if (this.byes.size >= this.expectedShards) {
          this.flush();
          this.saveFilterImages(); // after the last commit: they are worth less than any row
          this.onAllBye?.();
        }
        return;
      default:
        return assertNever(r, "writer request");
    }
  }

  /**
   * Acks are cumulative, so of one user's deletes queued for the same commit only the last does
   * work: an earlier one reaching no further is skipped (rows it would delete are still at or
   * below the later one's seq when that runs, so the end state is the same).
   */
  private queueDelete(k: Link, r: DeleteReq): void {
    this.ahead.deleted(r.user, r.upTo);
    const prev = this.deletesQueued.get(r.user);
    if (prev !== undefined && prev.r.t === "delete" && r.upTo >= prev.r.upTo) prev.skip = true;
    const op: Op = { k, r };
    this.ops.push(op);
    this.deletesQueued.set(r.user, op);
  }

  /**
   * A page must see every append sent before it, and no row a delete sent before it removes: it
   * commits the queued work first only then. Deletes at or below the page's start need no commit
   * first (the page starts after them), so a drain's reads do not wait on its own acks' deletes.
   */
  private pageNeedsCommit(r: FetchReq): boolean {
    const del = this.deletesQueued.get(r.user)?.r;
    return this.appendsQueued > 0 || (del?.t === "delete" && del.upTo > r.after);
  }

  /** Admin: one user's inbox figures, counting every append and delete sent before the request. */
  private countInbox(r: CountInboxReq): PortMsg {
    this.flush();
    const u = this.store.getUser(r.user);
    const figures = this.store.inboxFigures(r.user);
    const known = u !== null || figures.rows > 0;
    return { t: "inboxCount", user: r.user, req: r.req, known, lastSeen: u?.lastSeen ?? 0, ...figures };
  }

  private readUser(user: string, box: number | undefined): PortMsg {
    this.flush();
    const u = this.store.getUser(user);
    const reserved = u?.seqReserved ?? 0;
    const lastSeen = u?.lastSeen ?? 0;
    return { t: "loaded", user, seqBase: reserved + 1, seqLimit: reserved, lastSeen, ...boxOf(box) };
  }

  /**
   * One backlog page. It is cut at its byte budget (always keeping one row) so a backlog of large
   * messages never crosses threads or fills sockets in 32 MB lumps.
   */
  private readPage(r: FetchReq): RowsReply {
    this.lastFetchAt = performance.now();
    if (this.pageNeedsCommit(r)) this.flush();
    const ahead = this.ahead.take(r);
    if (ahead) this.metrics.add("fetchesAhead");
    const page = ahead ?? this.readFrames(r, r.after, r.limit, r.maxBytes, this.ahead.rowCost(r.user));
    if (ORDER_TRACE) {
      const seqs = page.frames.seqs;
      orderTrace(
        "w-page",
        r.user,
        "",
        "",
        `after=${r.after} n=${seqs.length} seqs=${seqs[0]}..${seqs.at(-1)} ahead=${!!ahead}`,
      );
    }
    this.ahead.noteRowCost(r.user, page);
    if (page.more) this.aheadWanted(r, page);
    return { t: "rows", user: r.user, gen: r.gen, rows: [], frames: page.frames, more: page.more };
  }

  /**
   * The page of `r`'s user from `after`. `rowCost`: bytes a row of this user's last page counted (0:
   * unknown), see sqlRowsFor.
   */
  private readFrames(r: FetchReq, after: number, limit: number, maxBytes: number, rowCost: number): PageRead {
    const user = r.user;
    const rows = sqlRowsFor(limit, maxBytes, rowCost);
    // A v0 link's page: the bodies alone, joined by SQLite (no per-row copy in the shard).
    if (r.bodies) {
      const stretches = this.store.fetchBodyBlobs(user, after, rows);
      const page = stretches === null ? null : pageOfBodyBlobs(stretches, rows, maxBytes, after);
      if (page !== null) return page;
    }
    // Whole frames joined by SQLite (blob-page.ts); rows one by one when they cannot be.
    const blobs = this.store.fetchFrameBlobs(user, after, rows);
    const page = blobs === null ? null : pageOfBlobs(blobs, rows, maxBytes, after);
    if (page !== null) return page;
    this.metrics.add("pagesByRow");
    return framePageOf(this.store.fetchFrameRows(user, after, rows), rows, maxBytes, this.pageScratch);
  }

  /** The page after this one is read once this batch of requests is done (readAheadDue). */
  private aheadWanted(r: FetchReq, page: PageRead): void {
    const n = page.frames.seqs.length;
    const [limit, maxBytes] = r.next ?? [r.limit, r.maxBytes];
    this.aheadDue.set(r.user, { r, after: page.frames.seqs[n - 1]!, limit, maxBytes });
  }

  /**
   * Reads the pages wanted ahead, at the end of the batch of requests that asked for them (not on
   * setImmediate: in the writer Worker an immediate ran only after the next port message, so the
   * drain's next fetch mostly arrived first, missed, and the late reads piled up in front of it),
   * unless something that could change them is queued by then. A failed read is dropped: the fetch
   * reads again.
   */
  private readAheadDue(): void {
    if (this.aheadDue.size === 0) return;
    const due = [...this.aheadDue.values()];
    this.aheadDue.clear();
    for (const { r, after, limit, maxBytes } of due) {
      if (this.appendsQueued > 0 || this.pageNeedsCommit({ ...r, after })) continue;
      try {
        this.ahead.put(
          r.user,
          after,
          limit,
          maxBytes,
          this.readFrames(r, after, limit, maxBytes, this.ahead.rowCost(r.user)),
        );
      } catch {
        this.ahead.clear();
      }
    }
  }

  /**
   * An append with a row no owner should make (e.g. a seq below 1): in its place in the queue, so
   * the commit counts it for its owner like any append, and its senders and owner hear a refusal.
   */
  private refuseMalformed(k: Link, a: AppendReq): void {
    this.metrics.add("garbage");
    log.error("refused an append with a malformed row; its messages are not stored", {
      rows: a.rows.length,
      user: a.rows[0]?.recipient ?? "",
    });
    this.ops.push({ k, r: a, refused: true });
  }

  private garbageCount = 0;
  private garbage(v?: unknown): void {
    this.metrics.add("garbage");
    // Only a shard packs appends (port garbage never has this tag): one bad row in a pack drops
    // every append in it, unstored and unanswered, so each such drop is an error worth seeing.
    if ((v as { t?: unknown } | null)?.t === "appends") {
      const counts = (v as { counts?: unknown }).counts;
      log.error("dropped a malformed pack of appends; its rows are not stored", {
        appends: Array.isArray(counts) ? counts.length : "?",
      });
    }
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
    this.appendsQueued = 0;
    this.deletesQueued.clear();
    // Replies keyed by link (answers to requests) and acks keyed by origin shard (current link).
    // A run of "stored" acks to one shard goes as one message (packed-acks.ts), in its place.
    const out = new Map<Link, (PortMsg | StoredAcksBuilder)[]>();
    const push: Push = (k, m) => {
      const link = typeof k === "number" ? this.links.get(k) : k;
      if (!link) return;
      let q = out.get(link);
      if (!q) out.set(link, q = []);
      if (m.t !== "sent" || m.status !== "stored") return void q.push(m);
      let last = q[q.length - 1];
      if (!(last instanceof StoredAcksBuilder)) q.push(last = new StoredAcksBuilder());
      last.add(m.conn, m.id);
    };
    // Appends and remembers are what the owner replays if we die: it counts them as committed.
    const confirmed = new Map<Link, number>();
    const t0 = performance.now();
    try {
      this.commit(ops, push, confirmed);
    } catch (e) {
      return this.failed(ops, e);
    }
    if (this.backoff.failing) this.recovered();
    this.metrics.add("commits");
    this.metrics.add("commitMsSum", performance.now() - t0);
    this.metrics.set("inboxRows", this.store.totalCount());
    this.metrics.set("dedupeRows", this.store.sent.count());
    for (const [k, n] of confirmed) {
      if (ORDER_TRACE) orderTrace("w-committed", "", "", "", `shard=${k.shard} n=${n}`);
      push(k, { t: "committed", n });
    }
    for (const [k, q] of out) this.send(k, q.map((m) => m instanceof StoredAcksBuilder ? m.done() : m));
    this.indexInbox();
    this.indexDedupe();
    // Under steady load the writer is never quiet: a chunk after a commit now and then.
    // Not while a drain reads pages (its reads come first; the debt is paid once it ends).
    const since = this.compactWaitingSince;
    const now = performance.now();
    const draining = now - this.lastFetchAt < INBOX_COMPACT_IDLE_MS;
    if (since !== null && !draining && now - since > INBOX_COMPACT_MAX_WAIT_MS && this.store.inboxCompactDue()) {
      this.compactChunk();
    }
    this.compactWhenIdle();
  }

  /** After the replies went out: move the inbox log's tail into its index if due (own transaction). */
  private indexInbox(): void {
    try {
      if (!this.store.inboxIndexDue()) return;
      this.store.transaction(() => this.store.buildInboxIndex());
      this.metrics.add("inboxIndexBuilds");
    } catch (e) {
      // The rows stay in the log and the tail is read back from it; the next commit tries again.
      log.warn("indexing the inbox log failed; retried later", { error: describeError(e) });
    }
  }

  /** After the replies went out: index the dedupe log's tail if it is due (its own transaction). */
  private indexDedupe(): void {
    try {
      if (!this.store.sent.due(Date.now(), this.o.dedupeWindowMs)) return;
      this.store.transaction(() => this.store.sent.buildRun());
      this.metrics.add("dedupeRuns");
      this.publishRunFilters();
    } catch (e) {
      // The keys stay in the log and in memory; the next commit tries again.
      log.warn("indexing the dedupe window failed; retried later", { error: describeError(e) });
    }
  }

  /** One transaction for the whole batch; replies are only pushed, and sent after it commits. */
  private commit(ops: Op[], push: Push, confirmed: Map<Link, number>): void {
    this.store.transaction(() => {
      // Dedupe records of an earlier failed batch, already confirmed to their owner: first, so a
      // lookup or confirm in this batch sees them.
      for (const r of this.retryRemembers) this.store.sent.remember(r.keys);
      let i = 0;
      while (i < ops.length) {
        const op = ops[i]!;
        if (op.r.t === "append") {
          // Merge consecutive appends into one multi-row insert.
          const group: { k: Link; r: AppendReq; refused?: boolean }[] = [];
          while (i < ops.length && ops[i]!.r.t === "append") group.push(ops[i++] as { k: Link; r: AppendReq });
          this.applyAppends(group.filter((g) => !g.refused), push);
          for (const g of group) {
            if (g.refused) push(g.k, appendRefusal(g.r, "SERVER_BUSY", "not stored; retry", push));
            confirmed.set(g.k, (confirmed.get(g.k) ?? 0) + 1);
          }
          continue;
        }
        if (op.r.t === "remember" || op.r.t === "rememberPacked") confirmed.set(op.k, (confirmed.get(op.k) ?? 0) + 1);
        if (!op.skip) this.apply(op.k, op.r, push);
        i++;
      }
    });
    this.retryRemembers = [];
  }

  /**
   * A transaction (or a read) failed: answer its appends with typed errors now, keep the other
   * requests for a retry after a back-off, and tell owners to refuse new stores meanwhile.
   */
  private failed(ops: { k: Link; r: WriterReq }[], e: unknown): void {
    this.ahead.clear();
    const code = failureCode(e);
    const plan = planFailure(ops, code, (shard) => this.links.get(shard));
    for (const [k, q] of plan.replies) this.send(k, q);
    this.retryOps.push(...plan.retry);
    this.retryRemembers.push(...plan.remembers);
    this.metrics.add("storeErrors");
    this.metrics.set("storeFailing", 1);
    if (this.retryTimer) return; // already backing off: the timer picks these up too
    const delay = this.backoff.next();
    log.error("storage write failed; its sends were refused, retrying", {
      error: describeError(e),
      code,
      refusedRows: plan.rows,
      retryInMs: delay,
    });
    this.retryTimer = setTimeout(() => this.retry(), delay);
  }

  /** Back-off over: run the kept requests again; with none, let owners try storing again. */
  private retry(): void {
    this.retryTimer = null;
    const again = this.retryOps;
    this.retryOps = [];
    if (again.length === 0 && this.retryRemembers.length === 0) {
      this.metrics.set("storeFailing", 0);
      return;
    }
    for (const op of again) this.receive(op.k, [op.r]);
    this.flushRetry();
  }

  /** A transaction even when only kept dedupe records wait (flush() skips an empty batch). */
  private flushRetry(): void {
    if (this.ops.length > 0) return this.flush();
    try {
      this.store.transaction(() => {
        for (const r of this.retryRemembers) this.store.sent.remember(r.keys);
      });
      this.retryRemembers = [];
      this.recovered();
    } catch (e) {
      this.failed([], e);
    }
  }

  private lastReclaim = 0;

  /**
   * The disk is below its reserve: give the WAL's space back (a TRUNCATE checkpoint), at most every
   * RECLAIM_EVERY_MS. Deleted rows only free disk through this, and a WAL can hold 64 MiB.
   */
  reclaimDisk(now: number): void {
    if (now - this.lastReclaim < RECLAIM_EVERY_MS) return;
    this.lastReclaim = now;
    this.flush();
    try {
      this.store.checkpointTruncate();
    } catch (e) {
      log.debug("checkpoint to free disk space failed; retried later", { error: describeError(e) });
    }
  }

  private recovered(): void {
    this.backoff.reset();
    this.metrics.set("storeFailing", 0);
    log.warn("storage writes succeed again");
  }

  /** One queued request inside the group commit; replies go out after the COMMIT. */
  private apply(k: Link, r: Exclude<Queued, AppendReq>, push: Push): void {
    switch (r.t) {
      case "load": {
        const range = this.store.reserveSeqs(r.user, r.reserve);
        return push(k, {
          t: "loaded",
          user: r.user,
          seqBase: range.first,
          seqLimit: range.last,
          lastSeen: range.lastSeen,
          ...boxOf(r.box),
        });
      }
      case "delete":
        return this.metrics.add("rowsDeleted", this.store.deleteUpTo(r.user, r.upTo));
      case "seen":
        return this.store.setLastSeen([{ user: r.user, ts: r.ts }]);
      case "remember":
        return void this.store.sent.remember(r.keys);
      case "rememberPacked":
        return void this.store.sent.rememberPacked(r.text, r.nums);
      case "lookup": {
        // Inside the transaction: sees every remember queued before it, committed or not yet.
        const seq = this.store.sent.lookup(r.user, r.from, r.id, r.since);
        return push(k, { t: "lookedUp", user: r.user, from: r.from, id: r.id, seq });
      }
      case "confirm": {
        const found = this.store.sent.lookup(r.user, r.from, r.id, Date.now() - this.o.dedupeWindowMs);
        if (ORDER_TRACE) orderTrace("w-confirm", r.user, r.from, r.id, `seq=${r.seq} found=${found}`);
        if (found > 0) {
          return push(r.o, { t: "sent", conn: r.c, id: r.id, status: "duplicate" });
        }
        const notice = confirmMissNotice(r);
        if (notice) push(k, notice); // the owner forgets the lost original's id
        return push(r.o, confirmMissReply(r));
      }
      default:
        return assertNever(r, "queued writer request");
    }
  }

  /**
   * The shards' filters at shutdown, kept for the next start (store/filter-images.ts), each in its
   * own transaction after the shards' last commit: writing one takes ~10 ms a MiB here, and a
   * shutdown that runs out of time loses an image (the next start rebuilds it), never a row.
   * Best effort: a failure leaves the next start a whole rebuild.
   */
  private saveFilterImages(): void {
    for (const { r, afterId } of this.images.splice(0)) this.saveFilterImage(r, afterId);
  }

  private saveFilterImage(r: FilterImageReq, afterId: number): void {
    const t0 = performance.now();
    try {
      const bytes = this.store.transaction(() =>
        this.store.filterImages.save(r.shard, r.shards, r.image, afterId, Date.now())
      );
      log.info("dedupe filter image saved", { shard: r.shard, bytes, afterId, ms: Math.round(performance.now() - t0) });
    } catch (e) {
      log.warn("saving the dedupe filter image failed; the next start rebuilds it from the store", {
        shard: r.shard,
        error: describeError(e),
      });
    }
  }

  /**
   * The first page of a shard's rebuild: its image from the last clean shutdown, if the file
   * holds one that fits, and the rebuild goes on after the image's end. Else null.
   */
  private takeFilterImage(r: ScanSentReq): SentPageReply | null {
    let taken: TakenImage;
    try {
      taken = this.store.filterImages.take(r.shard, r.shards, this.store.sent.lastId);
    } catch (e) {
      log.warn("reading the dedupe filter image failed; rebuilding from the store", {
        shard: r.shard,
        error: describeError(e),
      });
      return null;
    }
    if (taken.t === "none") return null;
    const problem = taken.t === "foreign" ? taken.problem : filterImageProblem(taken.image, this.o.dedupeWindowMs);
    if (problem !== null || taken.t !== "image") {
      log.warn("the dedupe filter image does not fit; rebuilding from the store", { shard: r.shard, problem });
      return null;
    }
    log.info("dedupe filter image read", { shard: r.shard, bytes: taken.bytes, afterId: taken.afterId });
    const none = { hashes: new Uint32Array(0), ts: new Float64Array(0) };
    return { t: "sentPage", ...none, after: [String(taken.afterId), "", ""], done: false, image: taken.image };
  }

  /** A page of the dedupe window for one shard's filter, as key hashes (no flush: see below). */
  private readSentPage(r: ScanSentReq): SentPageReply {
    if (r.after === null) {
      const image = this.takeFilterImage(r);
      if (image) return image;
    }
    // Keys queued but not committed came from that shard's own owner, which already has them in
    // its filter; a page need not see them.
    // The cursor is the log id, carried in the first slot of `after` (as the cluster's writer does).
    const after = Number(r.after?.[0] ?? 0) || 0;
    const mine = r.shards === 1 ? null : (recipient: string) => ownerOf(recipient, r.shards) === r.shard;
    const page = this.store.sent.hashPage(after, r.since, r.limit, mine);
    return {
      t: "sentPage",
      hashes: page.hashes,
      ts: page.ts,
      after: page.read > 0 ? [String(page.last), "", ""] : r.after,
      done: page.read < r.limit,
    };
  }

  private applyAppends(group: { k: Link; r: AppendReq }[], push: Push): void {
    const rows: StoredRow[] = [];
    for (const g of group) for (const row of g.r.rows) rows.push(row);
    const results = this.store.append(rows);
    // Stored rows settle their ids: into the durable dedupe window, in this same transaction.
    const keys: SentKey[] = [];
    let i = 0;
    for (const g of group) {
      const h = g.r.h;
      for (let j = 0; j < g.r.rows.length; j++, i++) {
        const r = g.r.rows[j]!;
        // Only new rows: a duplicate (same seq) was stored, and its key remembered, before.
        if (r.msgId === "" || results[i] !== "stored") continue;
        // With the owner's routing hashes when it sent them (else the log hashes the key).
        const h1 = h === undefined ? -1 : h[2 * j]!;
        keys.push(
          h1 >= 0
            ? { recipient: r.recipient, sender: r.sender, msgId: r.msgId, seq: r.seq, ts: r.ts, h1, h2: h![2 * j + 1]! }
            : { recipient: r.recipient, sender: r.sender, msgId: r.msgId, seq: r.seq, ts: r.ts },
        );
      }
    }
    if (keys.length) this.store.sent.remember(keys);
    let idx = 0;
    for (const g of group) {
      const rejected: number[] = [];
      g.r.rows.forEach((row, j) => {
        const res = results[idx++];
        const o = g.r.o[j]!;
        const c = g.r.c[j]!;
        if (ORDER_TRACE) orderTrace("w-append", row.recipient, row.sender, row.msgId, `seq=${row.seq} res=${res}`);
        if (res === "stored") this.metrics.add("rowsAppended");
        else if (res === "duplicate") this.metrics.add("rowsDuplicate");
        if (res === "full") {
          this.metrics.add("rowsRejectedFull");
          rejected.push(row.seq);
          const to = refusalShard(o);
          if (to >= 0) {
            push(to, {
              t: "sendError",
              conn: c,
              id: row.msgId,
              code: "INBOX_FULL",
              reason: `inbox of ${row.recipient} is full`,
            });
          }
        } else if (o >= 0) {
          push(o, { t: "sent", conn: c, id: row.msgId, status: res === "duplicate" ? "duplicate" : "stored" });
          if (res === "stored") this.metrics.ackLatency(Date.now() - row.ts); // ts: receive time, whole ms
        }
      });
      if (rejected.length) push(g.k, { t: "rejected", user: g.r.rows[0]!.recipient, seqs: rejected });
    }
  }

  /**
   * A backlog page's buffers are transferred, not cloned: the writer never touches a page again once
   * it is sent, and cloning 1 MiB pages cost 1.4–1.8 ms per page on the writer's side alone (bench:
   * ~0.25 µs per drained row), on the critical path of a drain (issue 14). A packed "stored" run's
   * number column is moved too (made for this message; 16 bytes a row, cloned at ~3.5 ns a byte).
   */
  private send(k: Link, msgs: (PortMsg | PackedAcks)[]): void {
    const held = this.held.get(k);
    if (held !== undefined) {
      this.held.delete(k);
      msgs = msgs.length === 0 ? held.msgs : [...held.msgs, ...msgs];
    }
    if (msgs.length === 0) return;
    let transfer: ArrayBuffer[] | null = null;
    for (const m of msgs) {
      if (m.t === "storedAcks") (transfer ??= []).push(m.nums.buffer as ArrayBuffer);
      if (m.t !== "rows" || m.frames === undefined) continue;
      const f = m.frames;
      (transfer ??= []).push(
        f.seqs.buffer as ArrayBuffer,
        f.frames.buffer as ArrayBuffer,
        f.ends.buffer as ArrayBuffer,
      );
    }
    if (transfer === null) k.port.postMessage(msgs);
    else k.port.postMessage(msgs, transfer);
  }

  /** A read's reply: held until the batch being received is done (see held), else sent now. */
  private reply(k: Link, m: PortMsg): void {
    if (this.receiving === 0) return this.send(k, [m]);
    let q = this.held.get(k);
    if (q === undefined) this.held.set(k, q = { msgs: [], bytes: 0 });
    q.msgs.push(m);
    q.bytes += replyBytes(m); // page bytes held: posted once past HELD_REPLY_MAX_BYTES
    if (q.bytes >= HELD_REPLY_MAX_BYTES) this.send(k, []); // what is held, in order
  }

  private sendHeld(): void {
    for (const k of [...this.held.keys()]) this.send(k, []);
  }

  /** Inbox TTL, then the dedupe window in bounded batches (the rest waits for the next run). */
  expire(now: number): void {
    this.ahead.clear();
    this.flush();
    let rows = 0;
    let keys = 0;
    try {
      this.store.transaction(() => {
        rows = this.store.expire(now);
      });
      this.indexDedupe(); // a quiet store's tail becomes a run by age, and so can expire
      const cutoff = now - this.o.dedupeWindowMs;
      for (let i = 0; i < DEDUPE_EXPIRE_BATCHES_PER_RUN; i++) {
        let n = 0;
        this.store.transaction(() => {
          n = this.store.sent.expire(cutoff, DEDUPE_EXPIRE_BATCH);
        });
        keys += n;
        if (n < DEDUPE_EXPIRE_BATCH) break;
      }
    } catch (e) {
      log.warn("expiry failed; the next round retries", { error: describeError(e) });
      return;
    }
    if (rows) {
      this.metrics.add("rowsExpired", rows);
      log.info("expired inbox rows", { rows });
    }
    // The gauge first: a scrape that sees the expired keys counted sees them gone from the window
    // too (the writer preempted between the two stores made a test read 20 expired and 20 held).
    this.metrics.set("dedupeRows", this.store.sent.count());
    if (keys) this.metrics.add("dedupeExpired", keys);
    this.publishRunFilters();
  }

  /** The runs' filters change only as runs are built, expired or read back: published then, not per commit. */
  private publishRunFilters(): void {
    const f = this.store.sent.runFilters();
    this.metrics.set("dedupeRunFilterBytes", f.bytes);
    this.metrics.set("dedupeRunsUnfiltered", f.unfiltered);
  }
}

/** A page to read ahead: the fetch that wanted it, where it starts, its budget. */
interface AheadDue {
  r: FetchReq;
  after: number;
  limit: number;
  maxBytes: number;
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

/**
 * A drain's rows (inbox-log.ts FrameRow: stored heads, or the fields of rows stored before them) as
 * a page of v1 DELIVER frames in one buffer (router/frame-page.ts), cut as cutPage cuts: a clone of
 * it is a memcpy, and the session writes bytes without encoding them (issue 14).
 */
export function framePageOf(rows: FrameRow[], limit: number, maxBytes: number, scratch?: PageScratch): PageRead {
  const b = new FramePageBuilder(Math.min(maxBytes, rows.length * 128), scratch);
  let bytes = 0;
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i]!;
    const body = v[2] as Uint8Array;
    const cost = body.byteLength + ROW_OVERHEAD_BYTES;
    if (bytes + cost > maxBytes && i > 0) return { frames: b.done(), more: true, bytes };
    bytes += cost;
    const head = v[1] as Uint8Array | null;
    if (head !== null) b.addHead(v[0] as number, head, body);
    else b.add(v[0] as number, v[5] as number, v[3] as string, v[4] as string, body); // stored before migration 6
  }
  return { frames: b.done(), more: rows.length === limit, bytes };
}

/**
 * How many rows to read for a page of `limit` rows and `maxBytes`, when the drain's last page counted
 * `rowCost` bytes a row: a byte-cut page would throw away the rows read past its budget, and the next
 * page read them again (64-byte bodies: 8,192 read, 6,553 kept). Rows of the last page's size fill the
 * budget, plus one to tell a cut page from the end. Never more than `limit`.
 * A page cut short this way still says `more` (it read as many rows as it asked for), so the drain
 * goes on from its last row: only the page's size depends on the estimate, never what it holds.
 */
export function sqlRowsFor(limit: number, maxBytes: number, rowCost: number): number {
  if (!(rowCost > 0)) return limit;
  return Math.min(limit, Math.floor(maxBytes / rowCost) + 1);
}
