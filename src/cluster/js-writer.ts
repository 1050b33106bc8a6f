// The storage writer of a cluster node: speaks the single node's writer protocol (append, load,
// fetch, delete, seen, remember, lookup, confirm, scanSent, bye → sent, committed, loaded, rows,
// lookedUp, sentPage) over JetStream and NATS KV, so the owner actors run unchanged on the
// cluster's durable store. The promises are the same: "stored"/committed only after JetStream's
// PubAck (and the dedupe key's KV put); a page sees every append sent before it; seqs come from
// blocks reserved by compare-and-set; replies leave in request order per link.

import { assertNever } from "../assert.ts";
import {
  boxOf,
  confirmMissReply,
  type ConfirmReq,
  type CountInboxReq,
  type FetchReq,
  isWriterReq,
  type LoadReq,
  type LookupReq,
  type PortMsg,
  type ScanSentReq,
  type StoredRow,
  type WriterReq,
} from "../router/wire.ts";
import { cutPage } from "../store/writer.ts";
import { unpackRemember } from "../router/packed-keys.ts";
import type { ClusterInbox } from "./inbox.ts";
import type { ReadRow } from "./inbox-codec.ts";
import { cursorAfter, pageAfter, planCapacity, planDelete } from "./js-plan.ts";
import type { LastSeen } from "./last-seen.ts";
import type { SeqBlocks } from "./seq-blocks.ts";
import type { SentWindow } from "./sent-kv.ts";
import { sentKeyHash } from "../router/sent-filter.ts";
import { ADOPT_RETRIES, ADOPT_RETRY_MS, type Claim, Claims } from "./handover.ts";
import { log } from "../observe/log.ts";
import { ORDER_TRACE, orderTrace } from "../observe/order-trace.ts";
import { SeenWriter } from "./seen-writer.ts";

/** An empty, final page of the dedupe window (fresh typed arrays each time: they are transferred). */

/** A filter-rebuild page that takes longer than this is answered empty, and asked for again. */
const SCAN_PAGE_TIMEOUT_MS = 10_000;
/** Pause before a failed filter-rebuild page is answered (the owner then asks again). */
const SCAN_RETRY_MS = 500;
const emptyPage = () => ({ hashes: new Uint32Array(0), ts: new Float64Array(0) });

/** Pause between attempts to store rows JetStream did not acknowledge (link down, leader election). */
const APPEND_RETRY_MS = 200;
/** First pause before a failed request is tried again (doubles up to REQUEST_RETRY_MAX_MS). */
const REQUEST_RETRY_MS = 100;
const REQUEST_RETRY_MAX_MS = 2000;
/** Rows read per step when a page or a delete scans a user's subject. */
const SCAN_PAGE = 1000;

export interface ReplyPort {
  postMessage(msgs: PortMsg[]): void;
}

interface Link {
  shard: number;
  port: ReplyPort;
  /** Resolves when every earlier request of this link has been answered. */
  tail: Promise<void>;
}

type Out = [to: number, m: PortMsg];

export interface JsWriterCounters {
  appended: number;
  duplicates: number;
  retries: number;
  garbage: number;
  errors: number;
  /** Rows refused because their recipient's inbox was full (--max-inbox). */
  rejectedFull: number;
  /** Late rows of another owner given a seq of this one (hand-over). */
  adopted: number;
}

export class JsWriter {
  readonly counters: JsWriterCounters = {
    appended: 0,
    duplicates: 0,
    retries: 0,
    garbage: 0,
    errors: 0,
    rejectedFull: 0,
    adopted: 0,
  };
  private readonly links = new Map<number, Link>();
  /** Per user: where the next page may start reading (see cursorAfter); dropped on delete. */
  private readonly cursors = new Map<string, { seq: number; streamSeq: number }>();
  private stopped = false;
  /** Stored messages per user, as last counted (only with a finite maxInbox). */
  private readonly counts = new Map<string, number>();
  /** Re-reads asked for and not started yet, by user (see recheck). */
  private readonly queuedRechecks = new Map<string, { attempt: number; done: (() => void)[] }>();
  /** Last-seen times, written outside the reply chain (seen-writer.ts). */
  private readonly seenWrites: SeenWriter;
  /** Owner hand-over: this writer's claims, and which foreign rows it served or adopted. */
  readonly claims = new Claims(crypto.randomUUID().slice(0, 8));
  /** Hand-over: gives late rows seqs of the owner (0: not yet; null: no connected recipient). */
  adopt: ((user: string, rows: StoredRow[]) => number[] | null) | null = null;
  /** Told after rows are stored (with whether JetStream refused them first): announcements. */
  onStored: ((users: string[], retried: boolean) => void) | null = null;
  /** Told when this writer opens a claim on a user (its owner reserved the first block). */
  onClaim: ((user: string) => void) | null = null;

  constructor(
    private readonly inbox: ClusterInbox,
    private readonly seqs: SeqBlocks,
    private readonly seen: LastSeen,
    private readonly sent: SentWindow,
    private readonly windowMs: number,
    /** Where replies for a shard without a link here go (in a cluster: any shard of any node). */
    private readonly forward: ((to: number, m: PortMsg) => void) | null = null,
    /** The global address of a user's owner, for filter rebuilds (every key kept when absent). */
    private readonly ownerOf: ((user: string) => number) | null = null,
    /** `--max-inbox`: most stored messages per user (Infinity: no cap). */
    private readonly maxInbox = Infinity,
  ) {
    this.seenWrites = new SeenWriter(
      seen,
      (write) => this.untilDone("seen", () => write().then(() => [])).then(() => {}),
    );
  }

  setPort(shard: number, port: ReplyPort): void {
    this.links.set(shard, { shard, port, tail: Promise.resolve() });
  }

  /** A batch from shard `shard`'s port: validated item by item, garbage counted and dropped. */
  receive(shard: number, batch: unknown): void {
    const link = this.links.get(shard);
    if (!link || !Array.isArray(batch)) return void this.counters.garbage++;
    for (const r of batch) {
      if (isWriterReq(r)) this.accept(link, r);
      else this.counters.garbage++;
    }
  }

  stop(): void {
    this.stopped = true;
  }

  /** Starts the work now (appends pipeline); its replies leave after every earlier reply. */
  private accept(link: Link, r: WriterReq): void {
    if (r.t === "scanSent") return this.scanAside(link, r);
    if (r.t === "seen") return this.seenWrites.put(r.user, r.ts);
    const before = link.tail;
    // A delete is judged under the claim of the asking box, even if released meanwhile (forDelete).
    const claim = r.t === "delete" ? this.claims.forDelete(r.user, r.first) : undefined;
    // An append's rows are tagged once, here: a run retried after a failure must not tag anew.
    const tags = r.t === "append" ? this.tagsOf(r.rows) : undefined;
    const work = this.untilDone(r.t, () => this.work(link, r, before, claim, tags));
    // A request that fails before the earlier ones are answered is handled by the chain below,
    // later: mark it handled now, or the runtime calls it unhandled and ends the shard's thread.
    work.catch(() => {});
    link.tail = before.then(() => work).then((out) => this.send(link, out), () => void this.counters.errors++);
  }

  /**
   * Runs a request until it succeeds. Every request is idempotent (appends carry their msg id,
   * deletes and KV puts repeat harmlessly, a repeated reservation leaves a gap), and the owner
   * counts on exactly one reply per request: a request dropped on a NATS error used to leave a
   * drain waiting forever (its page never came) or shift the owner's commit count by one.
   */
  private async untilDone(what: WriterReq["t"], run: () => Promise<Out[]>): Promise<Out[]> {
    for (let wait = REQUEST_RETRY_MS;; wait = Math.min(2 * wait, REQUEST_RETRY_MAX_MS)) {
      try {
        return await run();
      } catch (e) {
        if (this.stopped) throw e;
        this.counters.errors++;
        log.warn(`cluster writer: ${what} failed (${(e as Error).message}); retrying`);
        await Bun.sleep(wait);
      }
    }
  }

  /**
   * A filter-rebuild page is answered outside the ordered reply chain: it needs no order with the
   * others, and a scan that stalls (NATS reconnecting) must not hold back acks, pages or lookups.
   * A failed or stalled page is answered as an empty page at the same cursor, after a pause, so
   * that the owner asks again (its filter stays "building" and looks every id up meanwhile).
   */
  private scanAside(link: Link, r: ScanSentReq): void {
    const retry = (): Out[] => [[link.shard, { t: "sentPage", ...emptyPage(), after: r.after, done: false }]];
    const timeout = Bun.sleep(SCAN_PAGE_TIMEOUT_MS).then(retry);
    void Promise.race([this.scanSent(link, r), timeout])
      .catch(() => Bun.sleep(SCAN_RETRY_MS).then(retry))
      .then((out) => this.send(link, out));
  }

  /** Graceful stop: resolves once every reply under way and every last-seen write is done, or after `ms`. */
  async settle(ms: number): Promise<void> {
    const tails = Promise.allSettled([...this.links.values()].map((l) => l.tail));
    await Promise.race([Promise.all([tails, this.seenWrites.settle(ms)]), Bun.sleep(ms)]);
  }

  private work(link: Link, r: WriterReq, before: Promise<void>, claim?: Claim | null, tags?: string[]): Promise<Out[]> {
    switch (r.t) {
      case "append":
        return this.append(link, r.rows, r.o, r.c, tags ?? this.tagsOf(r.rows));
      case "load":
        return this.load(link, r);
      case "fetch":
        return before.then(() => this.fetch(link, r)); // a page must see every earlier append
      case "delete":
        return before.then(() => this.deleteUpTo(r.user, r.upTo, claim)).then(() => []);
      case "seen":
        return this.seen.set(r.user, r.ts).then(() => []);
      case "remember":
        return this.sent.remember(r.keys).then(() => [[link.shard, { t: "committed", n: 1 }]]);
      case "rememberPacked":
        return this.work(link, unpackRemember(r), before);
      case "lookup":
        return before.then(() => this.lookup(link, r)); // sees every remember sent before it
      case "confirm":
        return before.then(() => this.confirm(r));
      case "scanSent":
        return this.scanSent(link, r); // (normally answered aside: see scanAside)
      case "countInbox":
        return before.then(() => this.countInbox(link, r)); // counts every earlier append and delete
      case "bye":
        return Promise.resolve([]);
      case "filterImage": // the window is in JetStream here: owners of a cluster keep no image
        return Promise.resolve([]);
      default:
        return assertNever(r, "writer request");
    }
  }

  private send(link: Link, out: Out[]): void {
    const by = new Map<ReplyPort, PortMsg[]>();
    for (const [to, m] of out) {
      const port = to === link.shard ? link.port : this.links.get(to)?.port;
      if (!port) {
        this.forward?.(to, m); // without a route the shard is gone: its sender retries the unacked send
        continue;
      }
      let q = by.get(port);
      if (!q) by.set(port, q = []);
      q.push(m);
    }
    for (const [port, msgs] of by) port.postMessage(msgs);
  }

  /**
   * `--max-inbox`: the rows that fit their recipient's inbox. The others are answered here, as
   * the SQLite writer does: "duplicate" when a retry of a stored one, else INBOX_FULL to the
   * sender and "rejected" to the owner. Counts are cached per user (one owner writes a user's
   * subject); a delete forgets the count, and the next append asks the server again.
   */
  private async admit(link: Link, rows: StoredRow[], o: number[], c: number[], out: Out[]): Promise<number[]> {
    if (this.maxInbox === Infinity) return rows.map((_, i) => i);
    for (const u of new Set(rows.map((r) => r.recipient))) {
      if (!this.counts.has(u)) this.counts.set(u, await this.inbox.countOf(u));
    }
    const fits = planCapacity(rows.map((r) => r.recipient), this.counts, this.maxInbox);
    const rejected = new Map<string, number[]>();
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      if (fits[i]) continue;
      const stored = r.msgId !== "" && await this.sent.lookup(r.recipient, r.sender, r.msgId, 0) > 0;
      if (!stored) rejected.set(r.recipient, [...rejected.get(r.recipient) ?? [], r.seq]);
      if (o[i]! < 0) continue;
      out.push([
        o[i]!,
        stored ? { t: "sent", conn: c[i]!, id: r.msgId, status: "duplicate" } : {
          t: "sendError",
          conn: c[i]!,
          id: r.msgId,
          code: "INBOX_FULL",
          reason: `inbox of ${r.recipient} is full`,
        },
      ]);
    }
    for (const [user, seqs] of rejected) out.push([link.shard, { t: "rejected", user, seqs }]);
    this.counters.rejectedFull += [...rejected.values()].reduce((a, s) => a + s.length, 0);
    return rows.map((_, i) => i).filter((i) => fits[i]);
  }

  /** The claim tags rows are stored with, taken when their request arrives (Claims.tagOf). */
  private tagsOf(rows: readonly StoredRow[]): string[] {
    return rows.map((r) => this.claims.tagOf(r.recipient));
  }

  /** Stores rows until JetStream has acknowledged every one (retries carry the same msg id). */
  private async append(link: Link, rows: StoredRow[], o: number[], c: number[], tags: string[]): Promise<Out[]> {
    const out: Out[] = [];
    let todo = await this.admit(link, rows, o, c, out);
    const kept = new Set(todo);
    let retried = false;
    while (todo.length > 0 && !this.stopped) {
      const res = await this.inbox.append(todo.map((i) => toInboxRow(rows[i]!, tags[i]!)));
      const failed: number[] = [];
      res.forEach((a, j) => {
        const i = todo[j]!;
        if (!a.ok) return void failed.push(i);
        if (ORDER_TRACE) {
          const r = rows[i]!;
          orderTrace(
            "stored",
            r.recipient,
            r.sender,
            r.msgId,
            `seq=${r.seq} tag=${tags[i]} dup=${a.duplicate} retried=${retried}`,
          );
        }
        if (a.duplicate) this.counters.duplicates++;
        else {
          this.counters.appended++;
          const u = rows[i]!.recipient;
          if (this.counts.has(u)) this.counts.set(u, this.counts.get(u)! + 1);
        }
        if (o[i]! >= 0) {
          out.push([o[i]!, {
            t: "sent",
            conn: c[i]!,
            id: rows[i]!.msgId,
            status: a.duplicate ? "duplicate" : "stored",
          }]);
        }
      });
      todo = failed;
      if (failed.length > 0) {
        retried = true;
        this.counters.retries++;
        await Bun.sleep(APPEND_RETRY_MS);
      }
    }
    if (todo.length > 0) throw new Error("writer stopped with unacknowledged rows");
    // A stored row settles its id into the dedupe window, as the SQLite writer's transaction does.
    await this.sent.remember(rows.filter((_, i) => kept.has(i)));
    this.onStored?.([...new Set(rows.map((r) => r.recipient))], retried);
    out.push([link.shard, { t: "committed", n: 1 }]);
    return out;
  }

  private async lookup(link: Link, r: LookupReq): Promise<Out[]> {
    const seq = await this.sent.lookup(r.user, r.from, r.id, r.since);
    return [[link.shard, { t: "lookedUp", user: r.user, from: r.from, id: r.id, seq }]];
  }

  /**
   * A page of the dedupe window for an owner's filter rebuild: the bucket's keys in stream order,
   * kept when their recipient is owned by the asking shard (`ownerOf`, global addresses). The
   * cursor is the stream seq, carried in the first slot of `after`.
   */
  private async scanSent(link: Link, r: ScanSentReq): Promise<Out[]> {
    const page = await this.sent.scan(Number(r.after?.[0] ?? 0), r.limit);
    const mine = page.keys.filter((k) => k.ts >= r.since && (this.ownerOf?.(k.recipient) ?? r.shard) === r.shard);
    const hashes = new Uint32Array(2 * mine.length);
    const ts = new Float64Array(mine.length);
    mine.forEach((k, i) => {
      const [h1, h2] = sentKeyHash(k.recipient, k.sender, k.msgId);
      hashes[2 * i] = h1;
      hashes[2 * i + 1] = h2;
      ts[i] = k.ts;
    });
    const after: [string, string, string] = [String(page.lastSeq), "", ""];
    return [[link.shard, { t: "sentPage", hashes, ts, after, done: page.done }]];
  }

  /** A retry of a settled id: "duplicate" if its key is in the window, else its original was refused. */
  private async confirm(r: ConfirmReq): Promise<Out[]> {
    if (await this.sent.lookup(r.user, r.from, r.id, Date.now() - this.windowMs) > 0) {
      return [[r.o, { t: "sent", conn: r.c, id: r.id, status: "duplicate" }]];
    }
    return [[r.o, confirmMissReply(r)]];
  }

  private async load(link: Link, r: LoadReq): Promise<Out[]> {
    // Presence only: an unreadable last-seen time (its KV stream electing a leader) reads as
    // unknown (0) rather than holding the owner's load, and with it every later reply.
    const lastSeen = await this.seen.get(r.user).catch(() => 0);
    if (r.reserve > 0) {
      // A first block opens a claim; a later one too if another owner opened one since ours.
      const b = await this.seqs.reserve(r.user, r.reserve, this.claims.current(r.user)?.first ?? true);
      if (b.opened) {
        this.claims.opened(r.user, b.first, b.prevFirst, performance.now(), b.last);
        this.onClaim?.(r.user);
      } else this.claims.extended(r.user, b.last);
      if (ORDER_TRACE) {
        const c = this.claims.current(r.user);
        orderTrace(
          "claim",
          r.user,
          "",
          "",
          `opened=${b.opened} block=${b.first}..${b.last} tag=${c?.tag} from=${c?.from}`,
        );
      }
      return [[link.shard, {
        t: "loaded",
        user: r.user,
        seqBase: b.first,
        seqLimit: b.last,
        lastSeen,
        ...boxOf(r.box),
      }]];
    }
    const hi = await this.seqs.highWater(r.user);
    return [[link.shard, { t: "loaded", user: r.user, seqBase: hi + 1, seqLimit: hi, lastSeen, ...boxOf(r.box) }]];
  }

  private async fetch(link: Link, r: FetchReq): Promise<Out[]> {
    const c = this.cursors.get(r.user);
    // Acked rows are purged, so without a cursor the subject's start is the backlog's start.
    let from = c && c.seq === r.after ? c.streamSeq : 0;
    const read: ReadRow[] = [];
    const late: ReadRow[] = [];
    for (;;) {
      const page = await this.inbox.readBacklog(r.user, from, SCAN_PAGE);
      const mine = this.claims.page(page, r.after);
      late.push(...mine.late);
      for (const row of mine.keep) if (row.seq > r.after) read.push(row);
      if (page.length < SCAN_PAGE || read.length >= r.limit) break;
      from = page.at(-1)!.streamSeq;
    }
    this.adoptLate(r.user, late, 0);
    const { rows, more } = cutPage(pageAfter(read, r.after, r.limit).map(toStoredRow), r.limit, r.maxBytes);
    const last = rows.at(-1)?.seq;
    const at = last === undefined ? -1 : cursorAfter(read, last);
    if (last !== undefined && at >= 0) this.cursors.set(r.user, { seq: last, streamSeq: at });
    else this.cursors.delete(r.user);
    return [[link.shard, { t: "rows", user: r.user, gen: r.gen, rows, more }]];
  }

  /** Admin: one user's stored rows, their bytes and the oldest one's time, read from the stream. */
  private async countInbox(link: Link, r: CountInboxReq): Promise<Out[]> {
    let rows = 0, bytes = 0, oldestTs = 0, after = 0;
    for (;;) {
      const page = await this.inbox.readBacklog(r.user, after, SCAN_PAGE);
      for (const row of page) {
        rows++;
        bytes += row.body.byteLength;
        if (oldestTs === 0 || row.ts < oldestTs) oldestTs = row.ts;
      }
      if (page.length < SCAN_PAGE) break;
      after = page.at(-1)!.streamSeq;
    }
    const lastSeen = await this.seen.get(r.user);
    const known = rows > 0 || lastSeen > 0 || (await this.seqs.highWater(r.user)) > 0;
    return [[link.shard, { t: "inboxCount", user: r.user, req: r.req, known, lastSeen, rows, bytes, oldestTs }]];
  }

  /**
   * Deletes every stored row of `user` with seq <= upTo: one purge, plus singles for rows out of order.
   * Judged under `claim`, the claim of the box that asked (Claims.forDelete), kept even if released
   * meanwhile: judging with no claim took every row as this owner's own and deleted another owner's
   * late rows by their old seqs (docs/CLUSTER.md, "Adopted while draining"). Null: skipped.
   */
  private async deleteUpTo(user: string, upTo: number, claim: Claim | undefined | null): Promise<void> {
    if (claim === null) {
      if (ORDER_TRACE) {
        orderTrace("purge-skipped", user, "", "", `upTo=${upTo} (the asking box's block is no claim's here)`);
      }
      return;
    }
    const rows: ReadRow[] = [];
    let after = 0;
    for (;;) {
      const page = await this.inbox.readBacklog(user, after, SCAN_PAGE);
      rows.push(...page);
      if (page.length < SCAN_PAGE || page.some((p) => p.seq > upTo)) break;
      after = page.at(-1)!.streamSeq;
    }
    // Late rows are kept (seq Infinity) until adopted; adopted ones go once their new seq is acked.
    const late = rows.filter((r) => this.claims.verdictUnder(claim, r) === "late");
    const plan = planDelete(
      rows.map((r) => ({ seq: this.claims.ackSeq(r, claim) ?? Infinity, streamSeq: r.streamSeq })),
      upTo,
    );
    this.cursors.delete(user);
    this.counts.delete(user);
    if (ORDER_TRACE) {
      const gone = rows.filter((r) => plan.purgeBelow !== null && r.streamSeq < plan.purgeBelow).map((r) => r.seq);
      orderTrace(
        "purge",
        user,
        "",
        "",
        `upTo=${upTo} claim=${claim?.tag ?? "none"} current=${
          this.claims.current(user)?.tag
        } rows=${rows.length} late=${late.length} purged=${gone.join(",")} singles=${plan.singles.length}`,
      );
    }
    if (plan.purgeBelow !== null) await this.inbox.deleteThrough(user, plan.purgeBelow - 1);
    for (const s of plan.singles) await this.inbox.deleteOne(s);
    if (plan.purgeBelow !== null) this.claims.forgetBelow(user, plan.purgeBelow, claim);
    this.claims.forget(user, plan.singles, claim);
    // Rows late to a released claim may be a newer claim's own: only the current one adopts.
    if (claim === this.claims.current(user)) this.adoptLate(user, late, 0);
  }

  /**
   * Hand-over: re-reads `user`'s whole inbox for late rows of another owner and has the owner
   * adopt them (handover.ts). Runs in the reply order of this shard's link, so it never races a
   * page or a delete of the same user, and it reads after every request made before it. Called
   * when a late write is announced, after a move, and by the order gate (order-gate.ts), whose
   * `done` is called once every late row found has its seq here (or none can get one).
   */
  recheck(user: string, attempt = 0, done: () => void = () => {}): void {
    const link = this.links.values().next().value;
    if (!link || this.stopped) return done();
    // One queued re-read per user: it starts after this ask too, so it answers it. Queued anew per
    // ask, re-reads of a user's whole inbox (the order gate asks every few seconds while routes
    // come in) piled up in the reply chain faster than they ran under NATS restarts, and every
    // lookup and page of the shard waited behind them (docs/CLUSTER.md, "A liveness fault").
    const queued = this.queuedRechecks.get(user);
    if (queued) {
      queued.attempt = Math.min(queued.attempt, attempt);
      queued.done.push(done);
      return;
    }
    const q = { attempt, done: [done] };
    this.queuedRechecks.set(user, q);
    const doneAll = () => q.done.forEach((f) => f());
    link.tail = link.tail.then(async () => {
      this.queuedRechecks.delete(user); // running: a later ask needs a read that starts after it
      if (!this.claims.has(user)) return doneAll(); // nothing numbered here yet: no row is late to us
      const late: ReadRow[] = [];
      for (let after = 0;;) {
        const page = await this.inbox.readBacklog(user, after, SCAN_PAGE);
        for (const row of page) if (this.claims.verdict(row) === "late") late.push(row);
        if (page.length < SCAN_PAGE) break;
        after = page.at(-1)!.streamSeq;
      }
      if (ORDER_TRACE) orderTrace("reread", user, "", "", `late=${late.map((r) => r.seq).join(",")}`);
      this.adoptLate(user, late, q.attempt, doneAll);
    }).catch(() => (this.queuedRechecks.delete(user), this.counters.errors++, doneAll()));
  }

  /**
   * The owner numbers late rows, in their old seq order (an old owner's own order; an older
   * claim's block is lower), so that one sender's late rows keep their order among themselves.
   * The ones it could not number yet are looked for again soon.
   */
  private adoptLate(user: string, late: ReadRow[], attempt: number, done: () => void = () => {}): void {
    if (late.length === 0 || !this.adopt) return done();
    late.sort((x, y) => x.seq - y.seq);
    const seqs = this.adopt(user, late.map(toStoredRow));
    if (ORDER_TRACE) {
      orderTrace("adopt", user, "", "", `late=${late.map((r) => r.seq).join(",")} got=${seqs?.join(",") ?? "none"}`);
    }
    if (seqs === null) return done(); // nobody connected: the recipient's next drain adopts them
    this.counters.adopted += seqs.filter((s) => s > 0).length;
    const waiting = this.claims.adopted(user, late, seqs);
    if (waiting === 0 || attempt >= ADOPT_RETRIES) return done();
    setTimeout(() => this.recheck(user, attempt + 1, done), ADOPT_RETRY_MS);
  }
}

function toInboxRow(r: StoredRow, owner: string) {
  return { to: r.recipient, seq: r.seq, from: r.sender, id: r.msgId, ts: r.ts, body: r.body, owner };
}

function toStoredRow(r: ReadRow): StoredRow {
  return { recipient: r.to, seq: r.seq, sender: r.from, msgId: r.id, ts: r.ts, body: r.body };
}
