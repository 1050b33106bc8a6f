// The owner of a user is the one shard (hash of the user id) that sequences every message to that
// user. It is an actor per user: FIFO ports in, so per-sender order and the login-vs-store race are
// settled by message order, not locks. It decides, per message: forward live to the connection,
// or append to the store (offline, draining a backlog, slow, or too many unacked).
//
// Promise to senders: an ack ("delivered" | "stored" | "duplicate") is sent only once the message
// is acked by the recipient or committed to SQLite, and once its dedupe record is committed. Sequence numbers come from blocks reserved
// (and committed) in the store before use, so a crash leaves a gap but never reuses a number.
//
// State is split in two. Per user (`UserBox`, lives while the user is active): the sequence
// reservation, the dedupe window, what the store holds, presence. Per connection (`Link`, lives
// while the user is logged in): the delivery cursor, unacked deliveries, the held-back messages,
// and the drain phase below. Only `moveTo` changes a link's phase, and only along this table:
//
//   phase     event                                   next
//   idle      pump: fetch slot free                   fetching   (a page read is in flight)
//   idle      pump: no slot, or pages-out budget full  queued     (waits in the drain queue)
//   idle      pump: too many unacked                  idle       (the next ack pumps again)
//   queued    a fetch slot frees                      idle → pump
//   fetching  rows: caught up                         live       (held-back messages go out)
//   fetching  rows: page forwarded                    writing    (wait for the socket's flow)
//   fetching  rows: nothing new                       idle → pump
//   writing   flow ready                              idle → pump
//   blocked   flow ready                              idle → pump
//   live      route: slow, full or under pressure     idle       (serve from the store again)
//   any but fetching   flow not ready                 blocked
//
// Dedupe: a (sender, id) seen by this box is answered from memory; otherwise the shard's filter of
// the durable window (sent-filter.ts) says "certainly new" (the hot path) or "maybe": then the
// store is asked, and the user's later messages wait behind that one answer, in order.
//
// A new link starts in `idle` and pumps at once (attach). A flow-not-ready during `fetching` is
// left to the page that follows: a page forwarded to a backed-up socket waits in `writing` for the
// same flow-ready that `blocked` would.

import { assertNever } from "../assert.ts";
import {
  DEDUPE_IMAGE_MAX_BYTES,
  DEDUPE_SCAN_PAGE,
  type OwnerLimits,
  PAGE_SCRATCH_MAX_BYTES,
  ROW_OVERHEAD_BYTES,
} from "../limits.ts";
import { filterImageProblem, keyHash, SentFilter, sentKeyHashInto } from "./sent-filter.ts";
import { RecentIds } from "./recent-ids.ts";
import { pageBudget } from "./drain-page.ts";
import { pageDeliveries } from "./packed-page.ts";
import { type FramePage, framesAfter } from "./frame-page.ts";
import type {
  AckMsg,
  AppendReq,
  AttachMsg,
  Delivery,
  DetachMsg,
  FlowMsg,
  LoadedReply,
  LookedUpReply,
  OwnerMsg,
  PortMsg,
  RejectedReply,
  RememberReq,
  RouteMsg,
  RowsReply,
  SentKey,
  SentPageReply,
  StatusQuery,
  StoredRow,
  WriterReq,
} from "./wire.ts";
import { isLookupReply, UnknownStatus } from "./unknown-status.ts";
import { OwnerAdmin } from "./owner-admin.ts";
import { displacedWhy } from "./reattach-rule.ts";
import { WaitingCopies } from "./route-copies.ts";
import { LookupAhead } from "./lookup-ahead.ts";
import { CROSS_NODE_SLACK_MS, staleAttach } from "./login-order.ts";
import { sameNode } from "./shard-space.ts";
import { ORDER_TRACE, orderTrace } from "../observe/order-trace.ts";
import type { StoreRefusal } from "../observe/signals.ts";
import { HotBacklog, PageBuffer } from "./hot-backlog.ts";

export interface OwnerIO {
  readonly self: number;
  readonly shards: number;
  toShard(shard: number, m: PortMsg): void;
  toWriter(m: WriterReq): void;
  now(): number;
  /** True above the memory spill watermark: hold nothing for slow users in RAM. */
  underPressure(): boolean;
  /** A sender is told "delivered" for a send whose frame arrived at `t0` (epoch ms; metrics). */
  sendAcked?(t0: number): void;
  /**
   * Why the store takes no new message now (observe/signals.ts storeRefusal): the disk is below its
   * reserve or the writer backs off after a failed commit ("full"), or the messages waiting for it
   * weigh past --store-backlog-mb ("behind"). A send that would be stored is refused meanwhile.
   */
  storeRefusal?(): StoreRefusal | null;
  /** Cluster: whether this shard owns `user` under the current placement (absent: always). */
  owns?(user: string): boolean;
  /** Cluster: a route for a user this shard does not own (yet): kept until its view catches up. */
  park?(m: RouteMsg): void;
  /**
   * Cluster, cut off: `from`'s send `id` to `user` was numbered here and is dropped with the box,
   * never stored and never answered (cluster/dropped-sends.ts fences its sender's later sends).
   */
  droppedUnanswered?(user: string, from: string, id: string): void;
  /**
   * Cluster: a box got its first seqs. True when it must not number routes yet: owners moved or
   * the shard owned again a moment ago, and rows an earlier owner stored late are read and adopted
   * first; `done` is called once they are (or after a bounded wait). False: number at once.
   */
  freshBox?(user: string, done: () => void): boolean;
}

export { defaultOwnerLimits, type OwnerLimits } from "../limits.ts";

/** Most dedupe lookups a waiting box asks ahead (lookup-ahead.ts): bounds its share of the writer. */
const LOOKUPS_AHEAD = 256;

/**
 * Most senders a box keeps the last taken id of (prevTaken). Past it the map starts over: a
 * predecessor not found there is looked for in the box's memory of ids, and refused (retried in
 * order by the client) only if it is in neither.
 */
const LAST_TAKEN_MAX = 4096;

/** Most predecessor lookups in flight per owner (prevTaken): past it a miss is refused without one. */
const PREV_LOOKUPS_MAX = 1024;

/** Under memory pressure: unacked deliveries per user, fetch slots, and page budget divisor. */
const TIGHT_MAX_PENDING = 64;
const TIGHT_FETCH_SLOTS = 4;
/** Under memory pressure a shard's drain pages out (limits.pageBytesOut) shrink by this. */
const TIGHT_PAGE_BYTES_OUT_DIVISOR = 4;

interface Pending extends Delivery {
  o: number;
  c: number;
  mark: number; // once acked: its dedupe record is durable when this many confirmables are committed
  /** The key's hashes from routing (sentKeyHash; -1 and 0 without an id): its dedupe record carries them to the writer. */
  h1: number;
  h2: number;
}

/** The first hash of (recipient, sender, id), as the box's memory of ids indexes it (sent-filter.ts). */
function recentHash(to: string, from: string, id: string): number {
  sentKeyHashInto(to, from, id);
  return keyHash[0]!;
}

type Phase = "idle" | "queued" | "fetching" | "writing" | "blocked" | "live";

const TRANSITIONS: Record<Phase, readonly Phase[]> = {
  idle: ["idle", "queued", "fetching", "blocked"],
  queued: ["idle", "blocked"],
  fetching: ["live", "writing", "idle"],
  writing: ["idle", "blocked"],
  blocked: ["idle", "blocked"],
  live: ["idle", "blocked", "live"],
};

/** Link flag: a v0 socket (its pages are the bodies alone). */
const LINK_V0 = 1;
/** Link flag: a store append raced the page in flight, so the link is not caught up yet. */
const LINK_RACED = 2;

/** Whether link `l` has flag `f` (LINK_V0, LINK_RACED). */
const hasFlag = (l: Link, f: number): boolean => (l.flags & f) !== 0;

/** Per-connection state: one logged-in connection of the user. */
interface Link {
  readonly box: UserBox;
  readonly shard: number;
  readonly conn: number;
  readonly opened: number | undefined; // the session's open stamp (login-order.ts)
  readonly gen: number; // numbered per owner (linkGen): a page for an older link is ignored
  phase: Phase;
  cursor: number; // highest seq forwarded on this connection
  ackedAt: number; // when the user's ack last moved (or the connection attached)
  flags: number; // LINK_V0, LINK_RACED (one number: 12 fields, JSC's 112-byte size class, not 160)
  pages: number; // backlog pages fetched on this connection: later pages are bigger
  pending: Pending[]; // live deliveries not yet acked, seq ascending (NONE while none: see takeAll)
  // Messages that arrive while the backlog drains wait here (not in the store) and go out live
  // once the drain catches up. Invariant: every held seq is above every stored seq, because the
  // holdback is spilled to the store before any newer message is stored.
  holdback: Pending[]; // NONE while none
}

/** A link's resume point while its box has no seqs for it yet; `fresh`: a block asked for after the attach is coming. */
interface WaitingResume {
  resume: number;
  fresh: boolean;
}

/** The sequence reservation: loading (first read), reserving (a top-up in flight), or ready. */
type SeqState = "loading" | "reserving" | "ready";

/** Per-user state on its owner shard. */
interface UserBox {
  readonly user: string;
  /** This box among the user's boxes here, echoed in its loads' replies: a dropped box's reply is not ours. */
  readonly gen: number;
  seqState: SeqState;
  seqNext: number;
  seqLimit: number;
  /** The first seq of the first block this box got: a seq below it came from a lookup (durable). */
  firstSeq: number;
  /** Cluster: routes wait while an earlier owner's late rows are adopted first (OwnerIO.freshBox). */
  settling: boolean;
  lastSeen: number;
  waiting: RouteMsg[]; // routed before the box was loaded or had seqs, or behind a lookup (NONE: none)
  lookingUp: RouteMsg | null; // a message whose (sender, id) the store is being asked about
  link: Link | null;
  acked: number; // highest seq the recipient acked
  storedMax: number; // highest seq sent to the store
  storeUnknown: boolean; // true until a drain completes: older rows may exist we never saw
  deletedUpTo: number; // highest seq we asked the store to delete
  recent: RecentIds | null; // (sender, id) → seq, ts (recent-ids.ts); null until the first id
  touched: number;
  /** What an idle box never needs (see BoxRare); null until one of its fields does. */
  rare: BoxRare | null;
}

/**
 * A box's seldom-used state, in an object made on first use. An idle logged-in user's box holds
 * 18 fields, not 20: JSC's next size class down (160 bytes, not 224), ~64 bytes less per login
 * (issue 14). Once made it stays.
 */
interface BoxRare {
  statusWaiters: StatusQuery[]; // presence queries that came while the box loaded (NONE: none)
  // The mark of the newest dedupe records asked for this user (on its acks, or with its stored
  // rows): a retry of an acked message is answered "duplicate" at once only if that many
  // confirmables are committed, and the box's memory of ids is released only then (sweep).
  recentMark: number;
  /** Per sender, the id this box numbered last (prevTaken); null until the first. */
  lastTaken: Map<string, string> | null;
}

/** The lowest seq of the box's live deliveries not acked yet or held back (Infinity: none). */
function unsettledFrom(b: UserBox): number {
  const l = b.link;
  if (l === null) return Infinity;
  const p = l.pending.length > 0 ? l.pending[0]!.seq : Infinity;
  const h = l.holdback.length > 0 ? l.holdback[0]!.seq : Infinity;
  return p < h ? p : h;
}

function rareOf(b: UserBox): BoxRare {
  return b.rare ??= { statusWaiters: NONE, recentMark: 0, lastTaken: null };
}

/** A page's rows above the cursor, as deliveries. */
function deliveriesAfter(rows: readonly StoredRow[], cursor: number): Delivery[] {
  const out: Delivery[] = [];
  for (const r of rows) {
    if (r.seq > cursor) out.push({ seq: r.seq, ts: r.ts, from: r.sender, id: r.msgId, body: r.body, t0: 0 });
  }
  return out;
}

/**
 * The shared empty list of a box or link that holds nothing (most of them, most of the time: an
 * idle logged-in user costs no arrays). Frozen, so a push to it instead of a fresh array throws.
 */
const NONE: never[] = Object.freeze([]) as unknown as never[];

/**
 * A link's pending or held-back list, emptied: the list itself is handed over and the link gets
 * NONE (an idle logged-in user holds no arrays: ~130 bytes less per login, issue 14).
 */
function takeAll(l: Link, k: "pending" | "holdback"): Pending[] {
  const all = l[k];
  l[k] = NONE;
  return all;
}

/** Appends to a link's pending or held-back list, allocating it on first use. */
function pushTo(l: Link, k: "pending" | "holdback", d: Pending): void {
  if (l[k] === NONE) l[k] = [];
  l[k].push(d);
}

export interface OwnerStats {
  routed: number;
  forwardedLive: number;
  stored: number;
  duplicates: number;
  lookups: number;
  storeFullRejects: number;
  storeBehindRejects: number; // sends that would be stored, refused while the store is behind (refuseStore)
  orderRefused: number; // routes whose predecessor was not taken yet (prevTaken), refused
  staleLogins: number; // attaches older than the link's (router/login-order.ts), refused
  hotPages: number; // backlog pages answered from the shard's memory (hot-backlog.ts), not the writer
  boxes: number;
  online: number;
  recentReleased: number; // memories of ids released from idle online users (sweep)
  recentBytesSwept: number; // bytes of memories of ids the sweep let go (released, or with their box)
}

export class Owner {
  private readonly boxes = new Map<string, UserBox>();
  /** Appends sent to the writer and not yet confirmed committed, oldest first: replayed if it dies. */
  private unconfirmed: (AppendReq | RememberReq)[] = [];
  /** The `remember` of this turn, still taking keys (see rememberKeys); null when none is open. */
  private openRemember: RememberReq | null = null;
  /** Confirmable requests sent and committed so far: marks for deferred "delivered" acks. */
  private sentCount = 0;
  private confirmedCount = 0;
  /** Deliveries acked by the recipient whose dedupe record is not committed yet, by mark. */
  private awaitingCommit: Pending[] = [];
  /** What the durable dedupe window holds, for recipients owned here. */
  private filter: SentFilter;
  /** Until a scan of the store completes, every unknown (sender, id) is looked up. */
  private filterState: "ready" | "building" = "ready";
  /** The rebuild under way: when it started (io.now()) and the keys it read so far. */
  private scanStartedAt = 0;
  private scanKeys = 0;
  /** Bytes of the last shutdown's filter image the rebuild started from (0: none). */
  private scanImageBytes = 0;
  private filterRebuilt: FilterRebuilt | null = null;
  private scanAfter: [string, string, string] | null = null;
  private rescan = false;
  /** Bytes in `unconfirmed`: the store backlog that senders are throttled on. */
  unconfirmedBytes = 0;
  /**
   * Bytes of accepted routes waiting in boxes for sequence numbers (a load or top-up in flight).
   * They wait on the store as much as appends do: under a flood into many inboxes they were most
   * of the memory, so they count in the backlog too (issue 15).
   */
  waitingBytes = 0;
  /** Rows in `unconfirmed` plus routes waiting in boxes: v0 senders wait on their real memory. */
  backlogRows = 0;
  /** Backlog fetches in flight (user + gen): bounded per shard; links beyond wait in the queue. */
  private readonly fetchesInFlight = new Set<string>();
  /**
   * Drain page bytes each link holds out: a fetch's budget until its page comes, then the page's
   * bytes until the socket flushed it (flow ready). Their sum is bounded (limits.pageBytesOut).
   */
  private readonly pagesOut = new Map<Link, number>();
  private pageBytesOut = 0;
  /**
   * The last link's number, per owner, not per box: a box dropped with a page read in flight (a
   * fence, a placement change, an idle sweep) gets its answer later, and a fresh box's link must
   * never carry the same number and take that page for its own (tests/unit/link-gen.test.ts).
   */
  private linkGen = 0;
  /** Resent copies of routes that wait in a box, absorbed by their twin (route-copies.ts). */
  private readonly copies = new WaitingCopies<UserBox>();
  /** Predecessors not in a box's memory, looked up in the store (prevTaken): user, sender and id. */
  private readonly prevLookups = new Set<string>();
  /** Dedupe lookups asked as routes start waiting, taken in their order (lookup-ahead.ts). */
  private readonly ahead = new LookupAhead<UserBox>(LOOKUPS_AHEAD);
  /** The last box generation handed out (UserBox.gen). */
  private boxGen = 0;
  private readonly drainQueue = new Set<Link>();
  /** Resume points of links that attached while their box loaded: capped and acked on load. */
  private readonly loadingResume = new WeakMap<Link, WaitingResume>();
  readonly stats: OwnerStats = {
    routed: 0,
    forwardedLive: 0,
    stored: 0,
    duplicates: 0,
    lookups: 0,
    storeFullRejects: 0,
    storeBehindRejects: 0,
    orderRefused: 0,
    staleLogins: 0,
    hotPages: 0,
    boxes: 0,
    online: 0,
    recentReleased: 0,
    recentBytesSwept: 0,
  };

  /** Admin API requests (inspect, purge, disconnect): see owner-admin.ts. */
  private readonly admin: OwnerAdmin;

  /** Status of users without a box: answered from the store, never by creating one. */
  readonly unknown: UnknownStatus;
  /**
   * Rows this shard stored lately, to drain without the writer (hot-backlog.ts). Single node only:
   * in a cluster other owners write a user's rows too.
   */
  readonly hot: HotBacklog | null;
  private readonly hotBuffer = new PageBuffer(PAGE_SCRATCH_MAX_BYTES);

  constructor(private readonly io: OwnerIO, private readonly limits: OwnerLimits) {
    this.filter = new SentFilter(limits.dedupeWindowMs, limits.dedupeFilterBytes ?? Infinity);
    this.unknown = new UnknownStatus(io);
    const hotBytes = limits.hotBacklogBytes ?? 0;
    this.hot = io.owns === undefined && hotBytes > 0
      ? new HotBacklog(
        hotBytes,
        limits.inboxTtlMs ?? 0,
        limits.hotBacklogPastFirstPage ? { rows: limits.pageSize, bytes: limits.pageBytes } : null,
      )
      : null;
    this.admin = new OwnerAdmin({
      toShard: (k, m) => io.toShard(k, m),
      toWriter: (m) => this.toWriter(m),
      view: (user) => {
        const b = this.boxes.get(user);
        if (!b) return null;
        const l = b.link;
        const [pending, holdback] = l ? [l.pending.length, l.holdback.length] : [0, 0];
        return { where: l?.shard ?? -1, phase: l?.phase ?? "offline", lastSeen: b.lastSeen, pending, holdback };
      },
      disconnect: (user) => {
        const l = this.boxes.get(user)?.link;
        if (l) io.toShard(l.shard, { t: "evict", user, conn: l.conn, why: "admin" });
        return !!l;
      },
    });
  }

  handle(m: OwnerMsg): void {
    // Cluster: a send for a user placed elsewhere (the sender node's view differs from ours for
    // a moment) is parked unacked (cluster/parked.ts): it runs if our view makes us its owner,
    // else its SDK resends it. Attaches are taken: the session's view may be the newer one.
    if (m.t === "route" && this.io.owns && !this.io.owns(m.to)) return this.io.park?.(m);
    switch (m.t) {
      case "route":
        return this.onRoute(m);
      case "attach":
        return this.onAttach(m);
      case "detach":
        return this.onDetach(m);
      case "ack":
        return this.onAck(m);
      case "flow":
        return this.onFlow(m);
      case "statusQuery":
        return this.onStatus(m);
      case "loaded":
        if (isLookupReply(m)) return this.unknown.answer(m, this.boxes.has(m.user), (q) => this.onStatus(q));
        return this.onLoaded(m);
      case "rows":
        return this.onRows(m);
      case "rejected":
        return this.onRejected(m);
      case "committed":
        return this.onCommitted(m.n);
      case "lookedUp":
        return this.onLookedUp(m);
      case "sentPage":
        return this.onSentPage(m);
      case "inspect":
      case "purge":
      case "disconnect":
        return this.admin.onRequest(m);
      case "inboxCount":
        return this.admin.onCount(m);
      case "routesResumed":
        return; // cluster: taken by the shard's cluster side first (route-order.ts)
      default:
        return assertNever(m, "owner message");
    }
  }

  /** The one place a link's phase changes; a move the table does not allow is a bug. */
  private moveTo(l: Link, next: Phase): void {
    if (!TRANSITIONS[l.phase].includes(next)) throw new Error(`owner: ${l.phase} → ${next} is not a transition`);
    if (l.phase === "queued") this.drainQueue.delete(l);
    l.phase = next;
    if (next === "queued") this.drainQueue.add(l);
  }

  // ---- boxes and sequence numbers ----

  private box(user: string): UserBox {
    let b = this.boxes.get(user);
    if (!b) {
      b = {
        user,
        gen: ++this.boxGen,
        seqState: "loading",
        seqNext: 1,
        seqLimit: 0,
        firstSeq: 0,
        settling: false,
        lastSeen: 0,
        waiting: NONE,
        lookingUp: null,
        link: null,
        acked: 0,
        storedMax: 0,
        storeUnknown: true,
        deletedUpTo: 0,
        recent: null,
        touched: 0,
        rare: null,
      };
      this.boxes.set(user, b);
      this.stats.boxes = this.boxes.size;
      if (ORDER_TRACE) orderTrace("box-new", user, "", "");
      this.toWriter({ t: "load", user, reserve: this.limits.seqBlock, box: b.gen });
    }
    b.touched = this.io.now();
    return b;
  }

  private onLoaded(m: LoadedReply): void {
    const b = this.boxes.get(m.user);
    // A reply to a load of an earlier box of this user (dropped at a cut or a move) is not this
    // box's block: taken as its first, the box numbered from a block of another claim, whose rows
    // lay below the client's resume point and waited a minute to be adopted late (nats-restart
    // chaos: a reply 45 s late, the writer's reply chain held up by retries through cuts).
    if (!b || (m.box !== undefined && m.box !== b.gen)) return;
    const first = b.seqState === "loading";
    if (first) {
      b.lastSeen = Math.max(b.lastSeen, m.lastSeen);
      b.seqNext = m.seqBase;
      b.seqLimit = m.seqLimit;
      b.firstSeq = m.seqBase;
    } else {
      // A follow-up reservation. Ranges from one owner are contiguous; if not (a previous owner
      // incarnation reserved in between), jumping forward is always safe.
      if (m.seqBase !== b.seqLimit + 1) b.seqNext = Math.max(b.seqNext, m.seqBase);
      b.seqLimit = Math.max(b.seqLimit, m.seqLimit);
    }
    b.seqState = "ready";
    this.capResume(b); // a link that waits for seqs above its resume point
    if (first) this.deleteAcked(b); // acks that came while it loaded
    if (b.rare && b.rare.statusWaiters !== NONE) {
      const asked = b.rare.statusWaiters;
      b.rare.statusWaiters = NONE;
      for (const q of asked) this.replyStatus(b, q);
    }
    if (first && this.io.freshBox) {
      b.settling = true; // before the call: `done` may run inside it
      if (!this.io.freshBox(b.user, () => this.endSettling(b))) b.settling = false;
    }
    if (ORDER_TRACE) {
      orderTrace(
        "loaded",
        b.user,
        "",
        "",
        `base=${m.seqBase} first=${first} settling=${b.settling} waiting=${b.waiting.length}`,
      );
    }
    if (!b.settling) this.runWaiting(b);
  }

  /**
   * A box's waiting routes go now, in order, until the box must wait again (a lookup, seqs); the
   * rest keep their places. Lookup answers no route took are dropped once nothing waits. Taking
   * them all and routing each again re-queued every route behind the first one that waited: one
   * pass over the whole queue per lookup answer. In the full nats-restart chaos, 500 waiting
   * routes were queued again 465 times each, and the box never caught up with the resends.
   */
  private runWaiting(b: UserBox): void {
    if (ORDER_TRACE) orderTrace("run-waiting", b.user, "", "", `n=${b.waiting.length}`);
    const w = b.waiting;
    // Nothing waits: NONE's frozen storage is not the array kind the JIT compiled for, so no look inside.
    if (w === NONE) {
      if (!b.lookingUp) this.ahead.clear(b);
      return;
    }
    let i = 0;
    while (i < w.length && b.waiting === w && this.canRoute(b)) {
      const r = w[i++]!;
      this.waitingBytes -= routeBytes(r);
      this.backlogRows--;
      this.copies.forget(b, r);
      this.routeNow(b, r);
    }
    if (b.waiting === w) {
      if (i === w.length) b.waiting = NONE;
      else if (i > 0) w.splice(0, i);
    }
    if (b.waiting.length === 0) {
      if (!b.lookingUp) this.ahead.clear(b);
      return;
    }
    // The next waiting routes ask for their lookups as room frees up (lookup-ahead.ts).
    if (b.seqState !== "loading") {
      for (const r of b.waiting) {
        if (this.ahead.full(b)) break;
        this.lookUpAhead(b, r);
      }
    }
    this.ensureSeqs(b);
  }

  /** True when a route to `b` can be numbered now: nothing to wait for (its queue aside). */
  private canRoute(b: UserBox): boolean {
    return b.seqState !== "loading" && b.seqNext <= b.seqLimit && !b.lookingUp && !b.settling;
  }

  /** Cluster: the late rows found for a fresh box have their seqs here; its waiting routes go now, in order. */
  private endSettling(b: UserBox): void {
    if (!b.settling || this.boxes.get(b.user) !== b) return; // a dropped box's answer
    b.settling = false;
    this.runWaiting(b);
  }

  /** Empties a box's waiting routes (to be routed again), taking them off the backlog count. */
  private takeWaiting(b: UserBox): RouteMsg[] {
    const all = b.waiting;
    for (const r of all) {
      this.waitingBytes -= routeBytes(r);
      this.backlogRows--;
    }
    b.waiting = NONE;
    this.copies.clear(b);
    return all;
  }

  private ensureSeqs(b: UserBox): void {
    if (b.seqState === "ready" && b.seqLimit - b.seqNext < this.limits.seqBlock / 2) {
      b.seqState = "reserving";
      this.toWriter({ t: "load", user: b.user, reserve: this.limits.seqBlock, box: b.gen });
    }
  }

  // ---- routing ----

  private onRoute(m: RouteMsg): void {
    const b = this.box(m.to);
    if (b.waiting.length > 0 || !this.canRoute(b)) {
      if (this.copies.absorb(b, m, b.lookingUp)) return; // a resend of one that waits (route-copies.ts)
      if (ORDER_TRACE) {
        const why = `${b.seqState}${b.seqNext > b.seqLimit ? " no-seqs" : ""}${
          b.waiting.length ? " behind=" + b.waiting.length : ""
        }${b.lookingUp ? " lookup" : ""}${b.settling ? " settling" : ""}`;
        orderTrace("queued", m.to, m.from, m.id, `o=${m.o} c=${m.c} ${why}`);
      }
      if (b.waiting === NONE) b.waiting = [];
      b.waiting.push(m);
      this.copies.add(b, m);
      if (b.seqState !== "loading") this.lookUpAhead(b, m);
      this.waitingBytes += routeBytes(m);
      this.backlogRows++;
      this.ensureSeqs(b);
      return;
    }
    this.routeNow(b, m);
  }

  /** A route the box can number now (nothing waits before it): a retry, a lookup, or new. */
  private routeNow(b: UserBox, m: RouteMsg): void {
    if (m.id !== "") {
      const h1 = recentHash(m.to, m.from, m.id), h2 = keyHash[1]!;
      const now = this.io.now(); // one clock read for the whole routing of this message
      const prior = this.recentSeq(b, h1, m.from, m.id, now);
      if (prior !== 0) {
        this.ahead.take(b, m.from, m.id); // numbered meanwhile (an adopted late row): an answer asked ahead is old
        return this.onRetry(b, m, prior);
      }
      if (m.p !== undefined && !this.prevTaken(b, m)) return this.refuseOutOfOrder(m);
      if (this.filterState === "building" || this.filter.mightHave(h1, h2, now)) {
        const known = this.ahead.take(b, m.from, m.id);
        return known === undefined ? this.lookUp(b, m) : this.onAnswer(b, m, known);
      }
      return this.accept(b, m, h1, h2, now);
    }
    this.accept(b, m);
  }

  /**
   * True when `m`'s predecessor (gateway/send-chain.ts) was taken here: numbered by this box, or
   * known to it as a retry of an earlier owner's message. Then every seq it can have is below the
   * next one, and `m` may be numbered without overtaking it.
   */
  private prevTaken(b: UserBox, m: RouteMsg): boolean {
    const p = m.p!;
    if (b.rare?.lastTaken?.get(m.from) === p) return true;
    if (this.recentSeq(b, recentHash(m.to, m.from, p), m.from, p) !== 0) return true;
    // Not in this box's memory: maybe taken by an earlier box (a NATS restart, a move, a sweep),
    // whose answer the client has while the connection still counts it open. The store knows it
    // then: asked now, its answer is remembered, and the retry finds it. Without this, a send
    // linked to one the client will never resend would be refused for good.
    const k = b.user + "\0" + m.from + "\0" + p;
    if (!this.prevLookups.has(k) && this.prevLookups.size < PREV_LOOKUPS_MAX) {
      this.prevLookups.add(k);
      this.askLookupOf(b, m.from, p);
    }
    return false;
  }

  /**
   * `m`'s predecessor was not taken (refused, lost between nodes, dropped with an owner, or not
   * here yet): numbering `m` now would put it ahead. Refused like any send that must wait: the
   * client retries in order (client/order-lanes.ts), the predecessor first.
   */
  private refuseOutOfOrder(m: RouteMsg): void {
    this.stats.orderRefused++;
    if (ORDER_TRACE) orderTrace("prev-refused", m.to, m.from, m.id, `p=${m.p} o=${m.o} c=${m.c}`);
    this.refuseSend(m, "SERVER_BUSY", "an earlier send to this recipient is not taken yet; retry in order", true);
  }

  /** A typed refusal to the route's sender (none when no ack is due); `unfenced`: see SendErrorMsg. */
  private refuseSend(m: RouteMsg, code: string, reason: string, unfenced = false): void {
    if (m.o < 0) return;
    this.io.toShard(m.o, { t: "sendError", conn: m.c, id: m.id, code, reason, ...(unfenced ? { unfenced } : {}) });
  }

  /** A waiting route whose id the store may know: its lookup goes now, its answer waits for its turn. */
  private lookUpAhead(b: UserBox, m: RouteMsg): void {
    // Cheap checks first: a waiting box routes its queue again after every answer.
    if (m.id === "" || this.ahead.has(b, m.from, m.id) || this.recentOf(b, m.from, m.id) >= 0) return;
    const h1 = recentHash(m.to, m.from, m.id), h2 = keyHash[1]!;
    if (this.filterState !== "building" && !this.filter.mightHave(h1, h2, this.io.now())) return;
    if (this.ahead.ask(b, m.from, m.id)) this.askLookupOf(b, m.from, m.id);
  }

  /** The seq this box gave (sender, id) within the dedupe window, or 0. */
  private recentSeq(b: UserBox, h: number, from: string, id: string, now?: number): number {
    const slot = b.recent ? b.recent.find(h, from, id) : -1;
    if (slot < 0) return 0;
    const recent = b.recent!;
    if (recent.tsAt(slot) >= (now ?? this.io.now()) - this.limits.dedupeWindowMs) return recent.seqAt(slot);
    recent.remove(slot);
    return 0;
  }

  /** The slot of (sender, id) in the box's memory (not checked for age), or -1. */
  private recentOf(b: UserBox, from: string, id: string): number {
    return b.recent ? b.recent.find(recentHash(b.user, from, id), from, id) : -1;
  }

  /**
   * Remembers (sender, id) → seq; the oldest are forgotten a batch at a time past `recentIds`, but
   * never the key of a delivery still unacked or held back: it is in no store yet, so a retry that
   * missed it here would be looked up, not found, and delivered a second time under a new seq
   * (maxPending, 1,000 by default, is above the memory's 512).
   */
  private remember(b: UserBox, h: number, from: string, id: string, seq: number, now?: number): void {
    (b.recent ??= new RecentIds(this.limits.recentIds)).add(h, from, id, seq, now ?? this.io.now(), unsettledFrom(b));
  }

  /**
   * A new message: give it the next seq and place it. Its durable dedupe record is written when it
   * settles, never before: with the inbox row when stored (by the writer, same transaction), or on
   * the recipient's ack when delivered live. A live delivery lost with its owner thread has no
   * record, so the sender's retry is taken as new and delivered, not answered "duplicate".
   */
  private accept(b: UserBox, m: RouteMsg, h1 = -1, h2 = 0, clock?: number): void {
    // The store takes nothing now (disk full, or behind its budget): only what goes out live (or
    // waits in RAM behind a drain) is accepted from senders that hear a refusal and retry by id.
    // v0 senders cannot: the gateway pauses them, and what they sent before the pause is taken.
    const refusal = m.id !== "" && m.o >= 0 ? (this.io.storeRefusal?.() ?? null) : null;
    if (refusal !== null && this.placement(b) === "store") return this.refuseStore(m, refusal);
    this.stats.routed++;
    const seq = b.seqNext++;
    this.ensureSeqs(b);
    if (m.id !== "") {
      const now = clock ?? this.io.now();
      if (h1 < 0) {
        h1 = recentHash(m.to, m.from, m.id);
        h2 = keyHash[1]!;
      }
      this.remember(b, h1, m.from, m.id, seq, now);
      this.filter.add(h1, h2, now, now);
      const last = rareOf(b).lastTaken ??= new Map();
      if (last.size >= LAST_TAKEN_MAX && !last.has(m.from)) last.clear();
      last.set(m.from, m.id);
    }
    const d = { seq, ts: m.ts, from: m.from, id: m.id, body: m.body, t0: m.t0, o: m.o, c: m.c, mark: 0, h1, h2 };
    if (ORDER_TRACE) orderTrace("num", m.to, m.from, m.id, `seq=${seq} o=${m.o} c=${m.c}`);
    this.place(b, d);
  }

  /** The filter cannot rule the id out: ask the store, and hold the user's later messages. */
  private lookUp(b: UserBox, m: RouteMsg): void {
    if (ORDER_TRACE) orderTrace("lookup", m.to, m.from, m.id, `o=${m.o} c=${m.c}`);
    b.lookingUp = m;
    if (!this.ahead.asked(b, m.from, m.id)) this.askLookupOf(b, m.from, m.id); // else its answer is on its way
  }

  private askLookupOf(b: UserBox, from: string, id: string): void {
    this.stats.lookups++;
    this.toWriter({ t: "lookup", user: b.user, from, id, since: this.io.now() - this.limits.dedupeWindowMs });
  }

  private onLookedUp(r: LookedUpReply): void {
    const b = this.boxes.get(r.user);
    // A predecessor's lookup (prevTaken): known to the store means taken, remembered for the retry.
    if (this.prevLookups.delete(r.user + "\0" + r.from + "\0" + r.id) && b && r.seq > 0) {
      if (this.recentOf(b, r.from, r.id) < 0) this.remember(b, recentHash(r.user, r.from, r.id), r.from, r.id, r.seq);
    }
    if (b) this.ahead.answer(b, r.from, r.id, r.seq);
    const m = b?.lookingUp;
    if (!b || !m || m.from !== r.from || m.id !== r.id) return;
    b.lookingUp = null;
    this.ahead.take(b, m.from, m.id);
    this.onAnswer(b, m, r.seq);
    this.runWaiting(b);
  }

  /** The store's answer for a route's id: seen before (a retry), or new. */
  private onAnswer(b: UserBox, m: RouteMsg, seq: number): void {
    if (seq > 0) {
      this.remember(b, recentHash(m.to, m.from, m.id), m.from, m.id, seq);
      this.onRetry(b, m, seq);
    } else this.accept(b, m);
  }

  /** Forward live, hold back behind a draining backlog, or store. */
  private place(b: UserBox, d: Pending): void {
    const l = b.link;
    const where = this.placement(b);
    if (l && where === "live") {
      this.forward(l, [d], false);
      pushTo(l, "pending", d);
      this.stats.forwardedLive++;
      return;
    }
    if (l && where === "hold") {
      pushTo(l, "holdback", d);
      return;
    }
    if (l?.phase === "live") this.moveTo(l, "idle"); // slow or too many unacked: serve from the store
    // Everything before d that is not settled goes to the store first, in seq order: if d is
    // durable and the server then dies, no earlier message of the same sender may be lost with it
    // (its retry would arrive after d: per-sender order). Unacked deliveries stay deliverable and
    // their next ack deletes them, as when they go stale (spillStalePending).
    if (l?.pending.length) this.store(b, takeAll(l, "pending"));
    if (l?.holdback.length) this.store(b, takeAll(l, "holdback"));
    if (l) l.flags |= LINK_RACED;
    this.store(b, [d]);
  }

  /** Where a new message for this user goes now. */
  private placement(b: UserBox): "live" | "hold" | "store" {
    const l = b.link;
    const tight = this.io.underPressure();
    const maxPending = tight ? Math.min(this.limits.maxPending, TIGHT_MAX_PENDING) : this.limits.maxPending;
    if (l && l.phase === "live" && l.pending.length < maxPending) return "live";
    if (l && l.phase !== "live" && !tight && l.holdback.length < this.limits.holdback) return "hold";
    return "store";
  }

  /** The store takes nothing now: a typed error the SDK retries later with the same id; nothing is kept. */
  private refuseStore(m: RouteMsg, why: StoreRefusal): void {
    switch (why) {
      case "full":
        this.stats.storeFullRejects++;
        return this.refuseSend(m, "STORE_FULL", "disk full: message not stored; retry later");
      case "behind":
        this.stats.storeBehindRejects++;
        return this.refuseSend(m, "SERVER_BUSY", "store is behind; retry later");
      default:
        assertNever(why, "store refusal");
    }
  }

  /** A sender retried an id we have seen. Reply only with what is already true. */
  private onRetry(b: UserBox, m: RouteMsg, seq: number): void {
    this.stats.duplicates++;
    if (ORDER_TRACE) orderTrace("retry", m.to, m.from, m.id, `seq=${seq} first=${b.firstSeq} acked=${b.acked}`);
    // Numbered before this box (an earlier owner): known from the store's durable dedupe record,
    // so "duplicate" is true now; asking the writer again for every resend flooded it (route-copies.ts).
    if (seq < b.firstSeq) return this.ackSender(m.o, m.c, m.id, "duplicate");
    if (seq <= b.acked) {
      // Delivered and acked: "duplicate" now if its dedupe record is committed, else after it is.
      if ((b.rare?.recentMark ?? 0) <= this.confirmedCount) return this.ackSender(m.o, m.c, m.id, "duplicate");
      return this.confirm(b, m, seq);
    }
    const l = b.link;
    const live = l && (l.pending.find((p) => p.seq === seq) ?? l.holdback.find((p) => p.seq === seq));
    if (live) {
      // Still in flight: its eventual ack goes to the connection that retried.
      live.o = m.o;
      live.c = m.c;
      return;
    }
    // Stored, being stored, or settled before this box knew it: the writer answers.
    this.confirm(b, m, seq);
  }

  /**
   * The writer answers "duplicate" once everything before is committed; if the original (`seq`) is
   * not stored by then, a retryable refusal to the sender and a `rejected` notice to us, so the
   * next retry is taken as new (wire.ts, confirmMissNotice).
   */
  private confirm(b: UserBox, m: RouteMsg, seq: number): void {
    if (m.o >= 0) this.toWriter({ t: "confirm", user: b.user, from: m.from, o: m.o, c: m.c, id: m.id, seq });
  }

  private store(b: UserBox, items: Pending[]): void {
    if (items.length === 0) return;
    const rows: StoredRow[] = [];
    const o: number[] = [];
    const c: number[] = [];
    const h: number[] = []; // the hashes each was routed with: the writer logs the keys by them
    const storedBefore = b.storedMax;
    for (const d of items) {
      rows.push({ recipient: b.user, seq: d.seq, sender: d.from, msgId: d.id, ts: d.ts, body: d.body });
      o.push(d.o);
      c.push(d.c);
      h.push(d.h1, d.h2 | 0);
      if (d.seq > b.storedMax) b.storedMax = d.seq;
    }
    this.stats.stored += rows.length;
    this.hot?.storing(b.user, b.firstSeq, storedBefore, rows);
    if (ORDER_TRACE) {
      const l = b.link;
      orderTrace(
        "store",
        b.user,
        "",
        "",
        `seqs=${rows[0]!.seq}..${rows.at(-1)!.seq} n=${rows.length} phase=${l?.phase}`,
      );
    }
    const mark = this.confirmable({ t: "append", rows, o, c, h });
    if (b.recent !== null) rareOf(b).recentMark = mark; // its keys are durable once this commits
  }

  /**
   * Keys of deliveries acked now go into one `remember` per turn: the first of a turn opens it, the
   * rest join it (same mark), and it goes to the writer at the turn's end (setImmediate) or before
   * any other request, so the writer still sees every request in the order they were made.
   */
  private rememberKeys(keys: SentKey[]): number {
    const open = this.openRemember;
    if (open === null) {
      const req: RememberReq = { t: "remember", keys };
      this.unconfirmed.push(req);
      this.unconfirmedBytes += requestBytes(req);
      this.openRemember = req;
      setImmediate(this.closeRemember); // after every message of this poll (a microtask runs per message)
      return ++this.sentCount;
    }
    for (const k of keys) open.keys.push(k);
    this.unconfirmedBytes += keys.length * ROW_OVERHEAD_BYTES;
    return this.sentCount; // nothing confirmable was made since it opened (toWriter closes it)
  }

  private readonly closeRemember = (): void => {
    const req = this.openRemember;
    if (req === null) return;
    this.openRemember = null;
    this.io.toWriter(req);
  };

  /** Every request to the writer goes through here: an open remember goes first. */
  private toWriter(m: WriterReq): void {
    if (this.openRemember !== null) this.closeRemember();
    if (m.t === "delete") this.hot?.deleted(m.user, m.upTo);
    this.io.toWriter(m);
  }

  /** A request the writer confirms with `committed` (and we replay if it dies); returns its mark. */
  private confirmable(req: AppendReq | RememberReq): number {
    this.unconfirmed.push(req);
    this.unconfirmedBytes += requestBytes(req);
    this.backlogRows += requestRows(req);
    this.toWriter(req);
    return ++this.sentCount;
  }

  private onCommitted(n: number): void {
    if (ORDER_TRACE) {
      orderTrace("committed", "", "", "", `shard=${this.io.self} n=${n} outstanding=${this.unconfirmed.length}`);
    }
    const hot = this.hotUnlessPressed();
    for (const req of this.unconfirmed.splice(0, n)) {
      this.unconfirmedBytes -= requestBytes(req);
      this.backlogRows -= requestRows(req);
      if (hot !== null && req.t === "append") hot.committed(req.rows);
    }
    this.confirmedCount += n;
    let i = 0;
    while (i < this.awaitingCommit.length && this.awaitingCommit[i]!.mark <= this.confirmedCount) {
      const p = this.awaitingCommit[i++]!;
      this.ackDelivered(p);
    }
    if (i > 0) this.awaitingCommit.splice(0, i);
  }

  /**
   * The writer restarted and lost whatever it had not committed. Replay unconfirmed appends (the
   * store ignores rows it already has) and re-issue reservations and page reads in flight.
   */
  writerRestarted(): void {
    this.openRemember = null; // it is in `unconfirmed`: replayed below, not again at the turn's end
    if (ORDER_TRACE) {
      orderTrace("replay", "", "", "", `shard=${this.io.self} requests=${this.unconfirmed.length}`);
      for (const req of this.unconfirmed) {
        if (req.t === "append") {
          for (const r of req.rows) orderTrace("replay-row", r.recipient, r.sender, r.msgId, `seq=${r.seq}`);
        }
      }
    }
    for (const req of this.unconfirmed) this.toWriter(req);
    this.unknown.writerRestarted();
    this.ahead.reset(); // lookups asked ahead died with it: asked again when their turn comes
    this.prevLookups.clear(); // likewise: asked again at the next miss
    this.fetchesInFlight.clear(); // their replies died with the writer
    for (const b of this.boxes.values()) {
      if (b.seqState !== "ready") this.toWriter({ t: "load", user: b.user, reserve: this.limits.seqBlock, box: b.gen });
      // The last delete may have died uncommitted; sent once, it is not sent again until a later
      // stored row is acked, and its rows would stay (a login then delivers them again).
      if (b.deletedUpTo > 0) this.toWriter({ t: "delete", user: b.user, upTo: b.deletedUpTo, first: b.firstSeq });
      if (b.link?.phase === "fetching") this.issueFetch(b.link);
      if (b.lookingUp) this.lookUp(b, b.lookingUp);
    }
    if (this.filterState === "building") this.scanSent();
    // Tokens of fetches for older connections were cleared without a reply to come: whoever
    // waited on those slots must not wait forever.
    this.pumpQueued();
    this.admin.writerRestarted();
  }

  private forward(l: Link, items: Delivery[], page: boolean): void {
    const last = items[items.length - 1]!;
    // Nothing was outstanding: the slow-consumer clock starts now, not at an old ack or attach.
    if (l.cursor <= l.box.acked) l.ackedAt = this.io.now();
    if (last.seq > l.cursor) l.cursor = last.seq;
    // Pending items also carry their origin (o, c); the socket shard ignores those fields, and
    // copying every delivery just to drop two small ints costs more than sending them.
    this.io.toShard(l.shard, { t: "deliver", user: l.box.user, conn: l.conn, items, page });
  }

  private ackSender(o: number, c: number, id: string, status: "delivered" | "stored" | "duplicate"): void {
    if (o >= 0) this.io.toShard(o, { t: "sent", conn: c, id, status });
  }

  // ---- connections ----

  private linkOf(user: string, shard: number, conn: number): Link | null {
    const l = this.boxes.get(user)?.link;
    return l && l.shard === shard && l.conn === conn ? l : null;
  }

  /** How far apart two logins' open stamps must be to order them (login-order.ts): 0 within one process. */
  private stampSlack(l: Link, m: AttachMsg): number {
    return this.io.owns && !sameNode(l.shard, m.shard) ? CROSS_NODE_SLACK_MS : 0;
  }

  private onAttach(m: AttachMsg): void {
    const b = this.box(m.user);
    const old = b.link;
    if (old && (old.shard !== m.shard || old.conn !== m.conn) && staleAttach(old.opened, m, this.stampSlack(old, m))) {
      // A login read late by a starved shard: the link's connection is the newer one and stays.
      this.stats.staleLogins++;
      return this.io.toShard(m.shard, { t: "evict", user: b.user, conn: m.conn, why: "replaced" });
    }
    if (old && (old.shard !== m.shard || old.conn !== m.conn)) {
      // Newest login wins: the older connection is closed with a reason (a re-attach: reattach-rule.ts).
      this.io.toShard(old.shard, { t: "evict", user: b.user, conn: old.conn, why: displacedWhy(m) });
      this.release(b);
    } else if (old) {
      // The same connection attaching again (a login and a re-attach after an owner restart can
      // both arrive): the new link replaces it, and what the old one held unacked or back goes to
      // the store, in seq order, for the new link's drain. Dropping it would lose held messages.
      this.endLink(old); // its pages out are free: the new link pumps below, and may take them
      this.store(b, takeAll(old, "pending"));
      this.store(b, takeAll(old, "holdback"));
      this.stats.online--;
    }
    // The cursor is what the client has processed: a page serves an older claim's rows above it
    // only (cluster/handover.ts), and the SDK drops a seq at or below it, then acks it away. A box
    // still loading has no seqNext to cap a resume beyond every seq handed out, and one whose block
    // lies below the resume point (staleBlock) needs a new block: capped once it has its seqs.
    const stale = this.staleBlock(b, m.resume);
    const loading = b.seqState === "loading" || stale;
    const resume = loading ? m.resume : Math.min(m.resume, b.seqNext - 1);
    const l: Link = {
      box: b,
      shard: m.shard,
      conn: m.conn,
      opened: m.opened,
      gen: ++this.linkGen,
      phase: "idle",
      cursor: Math.max(resume, 0),
      ackedAt: this.io.now(),
      flags: m.v0 ? LINK_V0 : 0,
      pages: 0,
      pending: NONE,
      holdback: NONE,
    };
    this.stats.online++;
    b.link = l;
    if (ORDER_TRACE) {
      const at = `resume=${m.resume} cursor=${l.cursor} loading=${loading} next=${b.seqNext} stored=${b.storedMax}`;
      orderTrace(
        "attach",
        b.user,
        "",
        "",
        `${at} acked=${b.acked} shard=${m.shard} conn=${m.conn} re=${m.re === true}`,
      );
    }
    if (loading) this.loadingResume.set(l, { resume, fresh: stale && this.giveUpBlock(b) });
    else if (resume > b.acked) this.ackUpTo(b, resume);
    this.pump(l);
  }

  /**
   * Cluster: the client has seen a seq this box has not reached. Another owner numbered the user
   * above this box's block meanwhile (views differed: at startup, around a move); what this box
   * numbers next would lie at or below the client's last, and its SDK would drop it.
   */
  private staleBlock(b: UserBox, resume: number): boolean {
    return !!this.io.owns && b.seqState !== "loading" && resume >= b.seqNext;
  }

  /**
   * The rest of the block is given up (a gap) and a new one reserved: KV blocks are handed out in
   * increasing order, so one asked for now lies above every seq the client has. True when this
   * asked for it (false: a top-up asked before is under way, and may still lie below).
   */
  private giveUpBlock(b: UserBox): boolean {
    const asked = b.seqState === "ready";
    b.seqNext = b.seqLimit + 1;
    this.ensureSeqs(b);
    return asked;
  }

  /**
   * The box of a link that waits for seqs (attached while its box loaded, or above its block)
   * has them: the client's resume point is capped by them now, and acked. A page may have come
   * first (the SQLite writer answers reads before its group commit) and moved the cursor past the
   * resume point, but only with rows that exist, all at or below seqNext - 1: the cap then changes
   * nothing, and those rows stay unacked. A block asked for before the attach that still lies
   * below the resume point is given up once more; a block asked for after it is the last word (a
   * resume point above every seq ever handed out is a client's error, capped as on the single node).
   */
  private capResume(b: UserBox): void {
    const l = b.link;
    const w = l ? this.loadingResume.get(l) : undefined;
    if (!l || !w) return;
    if (!w.fresh && this.staleBlock(b, w.resume)) return void (w.fresh = this.giveUpBlock(b));
    this.loadingResume.delete(l);
    const capped = Math.min(w.resume, b.seqNext - 1);
    l.cursor = Math.min(l.cursor, b.seqNext - 1);
    if (capped > b.acked) this.ackUpTo(b, capped);
  }

  private onDetach(m: DetachMsg): void {
    const l = this.linkOf(m.user, m.shard, m.conn);
    if (l) this.release(l.box);
  }

  /** The connection is gone: unacked live deliveries move to the store, presence goes offline. */
  private release(b: UserBox): void {
    const l = b.link;
    if (!l) return;
    const freed = this.endLink(l);
    this.store(b, takeAll(l, "pending"));
    this.store(b, takeAll(l, "holdback"));
    b.link = null;
    this.stats.online--;
    b.lastSeen = this.io.now();
    this.toWriter({ t: "seen", user: b.user, ts: b.lastSeen });
    if (freed) this.pumpQueued();
  }

  /**
   * Cluster: these users were placed on another owner. Their boxes go, with what they held
   * unacked (delivered-not-acked, held back, waiting): none of it was acked to its sender, whose
   * SDK resends it with the same id to the new owner (the recipient's SDK drops copies by
   * sender and id). Storing it here instead would write rows with this owner's seqs behind the
   * new owner's, which its drain would never read.
   */
  dropMoved(moved: (user: string) => boolean, tell = false, park = false): void {
    let freed = false;
    for (const b of [...this.boxes.values()]) {
      if (!moved(b.user)) continue;
      if (ORDER_TRACE) orderTrace("box-drop", b.user, "", "", `park=${park} waiting=${b.waiting.length}`);
      if (park) this.parkUnnumbered(b);
      const l = b.link;
      if (l) {
        if (this.endLink(l)) freed = true;
        this.stats.online--;
        // `tell`: the session re-attaches if its view still names us (docs/CLUSTER.md, a flapping view).
        if (tell) {
          this.io.toShard(l.shard, { t: "evict", user: b.user, conn: l.conn, why: "moved", owner: this.io.self });
        }
      }
      this.boxes.delete(b.user);
      this.hot?.forget(b.user);
    }
    if (freed) this.pumpQueued(); // after the loop: no drain starts for a box about to go
  }

  /**
   * Cluster, cut off (`park`): routes that reached this box but got no seq yet (waiting for its
   * load, a seq block or a dedupe lookup) were dropped with it, unanswered; their SDKs resent them
   * a second later, behind the same senders' later sends taken after the link came back. Parked
   * instead (cluster/parked.ts), in their order, they run first when this shard owns again.
   */
  private parkUnnumbered(b: UserBox): void {
    if (b.lookingUp) this.io.park?.(b.lookingUp);
    b.lookingUp = null;
    for (const m of this.takeWaiting(b)) {
      if (ORDER_TRACE) orderTrace("park", m.to, m.from, m.id);
      this.io.park?.(m);
    }
    // Numbered, forwarded live or held back, never stored: unanswered, and gone with the box.
    const l = b.link, told = this.io.droppedUnanswered;
    if (!l || !told) return;
    for (const d of l.pending) if (d.o >= 0) told(b.user, d.from, d.id);
    for (const d of l.holdback) if (d.o >= 0) told(b.user, d.from, d.id);
    if (ORDER_TRACE) {
      for (const d of l.pending) orderTrace("drop-pending", b.user, d.from, d.id, `seq=${d.seq} o=${d.o}`);
      for (const d of l.holdback) orderTrace("drop-holdback", b.user, d.from, d.id, `seq=${d.seq} o=${d.o}`);
    }
  }

  /**
   * Cluster hand-over (cluster/handover.ts): rows another owner stored late for `user` get seqs
   * of this owner and are placed like new messages (their senders already heard "stored": no
   * ack is due). A (sender, id) this box already numbered keeps that seq. Per row: its seq here,
   * or 0 when there is none yet (seqs being reserved); null when the user is not connected here.
   */
  adoptLate(user: string, rows: readonly StoredRow[]): number[] | null {
    const b = this.boxes.get(user);
    // A settling box adopts without a link too (the copies are stored): its routes wait for that.
    if (!b || (!b.link && !b.settling) || (this.io.owns && !this.io.owns(user))) return null;
    // Routes waiting in a settling box came after these rows were stored: the rows go first.
    const behind = !b.settling && (b.waiting.length > 0 || b.lookingUp !== null);
    return rows.map((r) => {
      // A seq this box gave the same id stands for the row. One equal to the row's own seq was
      // only looked up (the durable record of this very row, another owner's block): no copy of
      // this owner carries it, so the row is adopted like any other.
      const slot = r.msgId !== "" ? this.recentOf(b, r.sender, r.msgId) : -1;
      const known = slot >= 0 ? b.recent!.seqAt(slot) : undefined;
      if (known !== undefined && known !== r.seq) return known;
      if (b.seqState === "loading" || b.seqNext > b.seqLimit || behind) return 0;
      const seq = b.seqNext;
      this.accept(b, {
        t: "route",
        to: user,
        from: r.sender,
        id: r.msgId,
        body: r.body,
        ts: r.ts,
        t0: 0,
        o: -1,
        c: -1,
      });
      if (b.seqNext === seq) return 0; // refused (disk full): found again later
      b.storedMax = Math.max(b.storedMax, seq); // the recipient's ack must reach the old copy
      return seq;
    });
  }

  /** Users connected to this owner now. */
  linkedUsers(): string[] {
    return [...this.boxes.values()].filter((b) => b.link).map((b) => b.user);
  }

  /**
   * Cluster: messages from socket shard k were lost on NATS (an attach, an ack or a flow change
   * among them would leave a link stuck). Its links are released (what they held goes to the
   * store) and their connections told to reconnect: the new logins start clean links.
   */
  resyncShard(k: number): void {
    for (const b of this.boxes.values()) {
      const l = b.link;
      if (l?.shard !== k) continue;
      this.io.toShard(k, { t: "evict", user: b.user, conn: l.conn, why: "resync" });
      this.release(b);
    }
  }

  /** Shard k died: every user whose socket lived there is offline now. */
  shardDown(k: number): void {
    for (const b of this.boxes.values()) if (b.link?.shard === k) this.release(b);
  }

  private onAck(m: AckMsg): void {
    const l = this.linkOf(m.user, m.shard, m.conn);
    if (!l) return;
    this.ackUpTo(l.box, Math.min(m.seq, l.cursor));
    if (l.phase === "idle") this.pump(l);
  }

  private ackUpTo(b: UserBox, n: number): void {
    if (n <= b.acked) return;
    b.acked = n;
    const l = b.link;
    if (l) {
      l.ackedAt = this.io.now();
      let i = 0;
      while (i < l.pending.length && l.pending[i]!.seq <= n) i++;
      if (i > 0) this.settleDelivered(b, l.pending.splice(0, i));
    }
    this.deleteAcked(b);
  }

  /**
   * What the recipient acked leaves the store. Not while the box loads: a delete names the box's
   * first block (a cluster writer judges the rows under that block's claim), so onLoaded asks
   * again (a page can be delivered and acked before the load is answered).
   */
  private deleteAcked(b: UserBox): void {
    if (b.firstSeq === 0) return;
    const del = b.storeUnknown ? b.acked : Math.min(b.acked, b.storedMax);
    if (del > b.deletedUpTo) {
      b.deletedUpTo = del;
      this.toWriter({ t: "delete", user: b.user, upTo: del, first: b.firstSeq });
    }
  }

  /**
   * The recipient acked these live deliveries: their ids go into the durable dedupe window (one
   * request for the lot), and each sender hears "delivered" once that is committed.
   */
  /** The sender hears "delivered"; the time since its send frame arrived goes to the metrics. */
  private ackDelivered(p: Pending): void {
    this.ackSender(p.o, p.c, p.id, "delivered");
    if (p.o >= 0 && p.t0 > 0) this.io.sendAcked?.(p.t0);
  }

  private settleDelivered(b: UserBox, acked: Pending[]): void {
    const keys: SentKey[] = [];
    for (const p of acked) {
      // With the hashes it was routed with (every id'd route has them): the writer does not hash
      // the key again (h2 signed, as sentKeyHash gives it).
      if (p.id !== "") {
        keys.push({ recipient: b.user, sender: p.from, msgId: p.id, seq: p.seq, ts: p.ts, h1: p.h1, h2: p.h2 | 0 });
      }
    }
    if (keys.length === 0) {
      for (const p of acked) this.ackDelivered(p);
      return;
    }
    const mark = this.rememberKeys(keys);
    rareOf(b).recentMark = mark; // marks only grow
    for (const p of acked) {
      p.mark = mark;
      this.awaitingCommit.push(p); // marks only grow: the list stays ordered
    }
  }

  private onFlow(m: FlowMsg): void {
    const l = this.linkOf(m.user, m.shard, m.conn);
    if (!l) return;
    if (!m.ready) {
      if (l.phase !== "fetching") this.moveTo(l, "blocked");
      return;
    }
    if (l.phase === "writing" || l.phase === "blocked") {
      const freed = this.freePages(l); // the page left user space
      this.moveTo(l, "idle");
      this.pump(l);
      if (freed) this.pumpQueued();
    }
  }

  // ---- backlog drain ----

  /** From `idle`: pulls the next backlog page unless too much is unacked or no slot is free. */
  private pump(l: Link): void {
    if (l.phase !== "idle") return;
    if (l.pending.length >= this.limits.maxPending / 2) return; // wait for acks first
    // Pages written to sockets and not yet flushed count too: a crowd draining big rows at once
    // would otherwise hold a page each in user space, whatever the slots say.
    if (this.pagesOutFull()) return this.moveTo(l, "queued");
    if (this.pumpHot(l)) return;
    // Bound the pages in flight per shard (fewer under memory pressure): a crowd reconnecting at
    // once must not pull every backlog into RAM together.
    if (this.fetchesInFlight.size >= this.fetchSlots()) return this.moveTo(l, "queued");
    this.moveTo(l, "fetching");
    l.flags &= ~LINK_RACED;
    this.issueFetch(l);
  }

  private fetchSlots(): number {
    return this.io.underPressure() ? Math.min(TIGHT_FETCH_SLOTS, this.limits.maxFetches) : this.limits.maxFetches;
  }

  /** Drain page bytes this shard has out (iris_drain_bytes_out). */
  get drainBytesOut(): number {
    return this.pageBytesOut;
  }

  private pagesOutFull(): boolean {
    const max = this.limits.pageBytesOut;
    if (max === undefined) return false;
    return this.pageBytesOut >= (this.io.underPressure() ? max / TIGHT_PAGE_BYTES_OUT_DIVISOR : max);
  }

  /** `l` now holds `bytes` of drain pages out (replacing what it held). */
  private holdPages(l: Link, bytes: number): void {
    this.pageBytesOut += bytes - (this.pagesOut.get(l) ?? 0);
    this.pagesOut.set(l, bytes);
  }

  /** Link `l` ends: it leaves the drain queue and frees its drain pages; true if it held any. */
  private endLink(l: Link): boolean {
    this.drainQueue.delete(l);
    return this.freePages(l);
  }

  /** `l` holds no drain page out any more; true if it held one (the caller may start a waiting drain). */
  private freePages(l: Link): boolean {
    const had = this.pagesOut.get(l);
    if (had === undefined) return false;
    this.pageBytesOut -= had;
    this.pagesOut.delete(l);
    return true;
  }

  private issueFetch(l: Link): void {
    const user = l.box.user;
    this.fetchesInFlight.add(user + "\0" + l.gen);
    const tight = this.io.underPressure();
    const { limit, maxBytes } = pageBudget(this.limits, l.pages++, tight);
    this.holdPages(l, maxBytes);
    const next = pageBudget(this.limits, l.pages, tight); // the writer reads that page ahead
    if (ORDER_TRACE) orderTrace("fetch", user, "", "", `after=${l.cursor} gen=${l.gen}`);
    this.toWriter({
      t: "fetch",
      user,
      after: l.cursor,
      limit,
      maxBytes,
      gen: l.gen,
      next: [next.limit, next.maxBytes],
      ...(hasFlag(l, LINK_V0) ? { bodies: true } : {}), // a v0 socket gets the bodies alone: the page may be just them
    });
  }

  /**
   * From `idle`: the next page from the shard's memory of rows it stored (hot-backlog.ts), if it
   * can answer for the store; it goes out at once, as a writer's page would (no slot: no read).
   */
  private pumpHot(l: Link): boolean {
    const hot = this.hotUnlessPressed();
    if (hot === null) return false;
    const { limit, maxBytes } = pageBudget(this.limits, l.pages, false);
    // A page for a session of this shard is written before the next one is built: the kept buffer.
    const buffer = l.shard === this.io.self ? this.hotBuffer : undefined;
    const p = hot.page(l.box.user, l.cursor, limit, maxBytes, this.io.now(), hasFlag(l, LINK_V0), buffer);
    if (p === null) return false;
    l.pages++;
    this.stats.hotPages++;
    this.moveTo(l, "fetching");
    l.flags &= ~LINK_RACED;
    if (ORDER_TRACE) {
      orderTrace("hot-page", l.box.user, "", "", `after=${l.cursor} n=${p.page.seqs.length} more=${p.more}`);
    }
    // The same page the writer would send (a v0 link gets the bodies alone). Read in this turn, so
    // no append raced it and its `more` is the whole truth.
    this.onFramePage(l, p.page, p.more);
    return true;
  }

  /**
   * The shard's memory of stored rows, or null: none is kept in RAM above the memory watermark, so
   * there every entry goes (and none starts again until its box does).
   */
  private hotUnlessPressed(): HotBacklog | null {
    if (this.hot !== null && this.io.underPressure()) {
      this.hot.clear();
      return null;
    }
    return this.hot;
  }

  /** Starts waiting drains while fetch slots are free. */
  private pumpQueued(): void {
    for (const next of this.drainQueue) {
      if (this.fetchesInFlight.size >= this.fetchSlots() || this.pagesOutFull()) break;
      this.moveTo(next, "idle");
      this.pump(next);
    }
  }

  private onRows(m: RowsReply): void {
    // A finished fetch (for this or an older connection) gives its slot to a waiting drain.
    if (this.fetchesInFlight.delete(m.user + "\0" + m.gen)) this.pumpQueued();
    this.takeRows(m);
    if (this.drainQueue.size > 0) this.pumpQueued(); // the page may hold fewer bytes than its fetch did
  }

  private takeRows(m: RowsReply): void {
    const l = this.boxes.get(m.user)?.link;
    if (!l || m.gen !== l.gen || l.phase !== "fetching") return;
    // Rows at or below the cursor were already forwarded on this connection.
    if (m.frames) return this.onFramePage(l, m.frames, m.more);
    const rows = m.packed ? pageDeliveries(m.packed, l.cursor) : deliveriesAfter(m.rows, l.cursor);
    if (ORDER_TRACE) {
      const seqs = rows.length > 0 ? `${rows[0]!.seq}..${rows.at(-1)!.seq}` : "none";
      orderTrace(
        "page",
        m.user,
        "",
        "",
        `seqs=${seqs} n=${rows.length} more=${m.more} raced=${hasFlag(l, LINK_RACED)}`,
      );
    }
    if (rows.length > 0) this.forward(l, rows, true);
    if (!m.more && !hasFlag(l, LINK_RACED)) return this.goLive(l);
    if (rows.length > 0) {
      let bytes = 0;
      for (const r of rows) bytes += r.body.byteLength;
      this.holdPages(l, bytes);
      return this.moveTo(l, "writing");
    }
    this.freePages(l);
    this.moveTo(l, "idle");
    this.pump(l);
  }

  /**
   * A page of pre-encoded frames (the SQLite writer's form): the rows above the cursor go to the
   * session as they are, and the drain moves on exactly as for a page of rows.
   */
  private onFramePage(l: Link, page: FramePage, more: boolean): void {
    const p = framesAfter(page, l.cursor);
    const n = p.seqs.length;
    const bytes = p.frames.byteLength; // read first: a session of this shard frees the page it wrote
    if (n > 0) {
      if (l.cursor <= l.box.acked) l.ackedAt = this.io.now(); // as forward(): the slow clock starts now
      l.cursor = p.seqs[n - 1]!;
      this.io.toShard(l.shard, { t: "deliver", user: l.box.user, conn: l.conn, items: [], page: true, frames: p });
    }
    if (!more && !hasFlag(l, LINK_RACED)) return this.goLive(l);
    if (n > 0) {
      this.holdPages(l, bytes);
      return this.moveTo(l, "writing");
    }
    this.freePages(l);
    this.moveTo(l, "idle");
    this.pump(l);
  }

  /** Caught up: the held-back messages go out, and everything after is forwarded as it arrives. */
  private goLive(l: Link): void {
    const b = l.box;
    this.freePages(l); // a live link's last page is not waited for
    if (ORDER_TRACE) {
      orderTrace("live", b.user, "", "", `cursor=${l.cursor} stored=${b.storedMax} held=${l.holdback.length}`);
    }
    this.moveTo(l, "live");
    b.storeUnknown = false;
    if (l.cursor > b.storedMax) b.storedMax = l.cursor;
    if (l.holdback.length === 0) return;
    const held = takeAll(l, "holdback");
    this.forward(l, held, false);
    for (const d of held) pushTo(l, "pending", d);
    this.stats.forwardedLive += held.length;
  }

  private onRejected(m: RejectedReply): void {
    this.hot?.drop(m.user); // refused rows were never stored: the entry cannot stand for the store
    const b = this.boxes.get(m.user);
    if (!b) return;
    b.recent?.removeSeqs(new Set(m.seqs));
  }

  // ---- presence ----

  private onStatus(q: StatusQuery): void {
    const b = this.boxes.get(q.user);
    if (!b) return this.unknown.lookup(q);
    if (b.seqState === "loading") {
      const r = rareOf(b);
      (r.statusWaiters === NONE ? r.statusWaiters = [] : r.statusWaiters).push(q);
    } else this.replyStatus(b, q);
  }

  private replyStatus(b: UserBox, q: StatusQuery): void {
    this.io.toShard(q.shard, {
      t: "statusReply",
      req: q.req,
      user: b.user,
      online: b.link !== null,
      lastSeen: b.lastSeen,
    });
  }

  // ---- housekeeping ----

  /**
   * Recipients that take deliveries but never ack hold `maxPending` messages in RAM; past the
   * timeout they are disconnected (their unacked messages move to the store on detach).
   */
  cutSlowConsumers(): number {
    const limit = this.io.now() - this.limits.slowTimeoutMs;
    let n = 0;
    for (const b of this.boxes.values()) {
      const l = b.link;
      // Deliveries outstanding (forwarded beyond the last ack) and no ack progress for the timeout.
      if (!l || l.cursor <= b.acked || l.ackedAt > limit) continue;
      this.io.toShard(l.shard, { t: "evict", user: b.user, conn: l.conn, why: "slow" });
      l.ackedAt = this.io.now(); // one eviction per timeout, even if the close is slow
      n++;
    }
    return n;
  }

  /**
   * Unacked live deliveries older than `ageMs` move to the store: RAM is freed and their senders
   * get "stored" now instead of waiting on a recipient that may never ack. They were already
   * written to the socket; a later ack deletes them from the store.
   */
  spillStalePending(ageMs: number): number {
    if (this.io.storeRefusal?.() === "full") return 0; // they stay in RAM (bounded by maxPending) until acked
    const cutoff = this.io.now() - ageMs;
    let n = 0;
    for (const b of this.boxes.values()) {
      const l = b.link;
      if (!l) continue;
      let i = 0;
      while (i < l.pending.length && l.pending[i]!.ts <= cutoff) i++;
      if (i === 0) continue;
      this.store(b, l.pending.splice(0, i));
      n += i;
    }
    return n;
  }

  /**
   * Forgets offline, idle boxes (their state is in the store) so memory tracks active users, and
   * releases the memory of ids of online users who got nothing for as long (releaseRecent).
   */
  sweep(idleMs: number): number {
    const cutoff = this.io.now() - idleMs;
    let n = 0;
    for (const [u, b] of this.boxes) {
      if (b.link) {
        if (b.recent !== null && b.touched <= cutoff && this.recentReleasable(b)) this.releaseRecent(b);
        continue;
      }
      if (b.seqState !== "ready" || b.waiting.length || b.lookingUp || b.touched > cutoff) continue;
      this.stats.recentBytesSwept += b.recent?.bytes ?? 0;
      this.boxes.delete(u);
      this.hot?.forget(u);
      n++;
    }
    this.stats.boxes = this.boxes.size;
    this.filter.expire(this.io.now());
    return n;
  }

  /** True while the dedupe filter is rebuilt from the store: every send with an id is looked up meanwhile. */
  get filterBuilding(): boolean {
    return this.filterState === "building";
  }

  /** The last finished rebuild of the dedupe filter (its keys and ms), once: the host logs it. */
  takeFilterRebuilt(): FilterRebuilt | null {
    const r = this.filterRebuilt;
    this.filterRebuilt = null;
    return r;
  }

  /** The dedupe filter's bytes, and the keys it holds past its sizes (its memory bound). */
  get filterBytes(): number {
    return this.filter.bytes;
  }
  get filterOverfilled(): number {
    return this.filter.overfilled;
  }

  /**
   * Whether every key in the box's memory of ids is in the durable dedupe window, so that a retry
   * it no longer remembers is still found there (the filter says "maybe", the store answers). Keys
   * of unacked deliveries are not, nor are those whose record is not committed (recentMark). One
   * node only: a cluster owner tells an earlier owner's late rows apart by this memory
   * (adoptLate), which has no store to ask.
   */
  private recentReleasable(b: UserBox): boolean {
    return this.io.owns === undefined && !b.settling && b.lookingUp === null && b.waiting.length === 0 &&
      unsettledFrom(b) === Infinity && (b.rare?.recentMark ?? 0) <= this.confirmedCount;
  }

  /**
   * An online user who got nothing for a while keeps no memory of ids: at its limit it is ~50 KB a
   * user (recent-ids.ts), and without this a server holds it for every user who was ever busy for
   * as long as they stay connected (issue 14: 1,000 busy recipients left the shard a 46 MB heap
   * against 10 MB). A later retry costs a store lookup instead of a memory hit.
   */
  private releaseRecent(b: UserBox): void {
    this.stats.recentBytesSwept += b.recent?.bytes ?? 0;
    b.recent = null;
    this.stats.recentReleased++;
  }

  // ---- the dedupe filter ----

  /** Rebuilds the filter from the store's window (at shard start); lookups cover the meantime. */
  startDedupeScan(): void {
    const running = this.filterState === "building";
    this.filterState = "building";
    this.scanAfter = null;
    this.scanStartedAt = this.io.now();
    this.scanKeys = 0;
    this.scanImageBytes = 0;
    // A scan under way restarts from the beginning with its next page (cluster: owners moved).
    if (running) this.rescan = true;
    else this.scanSent();
  }

  private scanSent(): void {
    this.toWriter({
      t: "scanSent",
      shard: this.io.self,
      shards: this.io.shards,
      after: this.scanAfter,
      since: this.io.now() - this.limits.dedupeWindowMs,
      limit: DEDUPE_SCAN_PAGE,
    });
  }

  private onSentPage(r: SentPageReply): void {
    if (this.filterState !== "building") return;
    const now = this.io.now();
    if (r.image !== undefined && this.scanAfter === null && !this.rescan) {
      // The last clean shutdown's filter: its keys up to r.after; the pages after it hold the rest.
      if (filterImageProblem(r.image, this.limits.dedupeWindowMs) !== null) return this.scanSent(); // the whole window
      this.scanImageBytes = this.filter.adopt(r.image, now);
    }
    // The next page is asked for first, so the writer reads it while this one is added (one page
    // in flight, as before: a writer restart asks again from scanAfter).
    const rescan = this.rescan;
    this.rescan = false;
    if (!rescan) this.scanAfter = r.after; // else from scanAfter = null: the start
    if (rescan || !r.done) this.scanSent();
    for (let i = 0; i < r.ts.length; i++) this.filter.add(r.hashes[2 * i]!, r.hashes[2 * i + 1]!, r.ts[i]!, now);
    if (rescan) return;
    this.scanKeys += r.ts.length;
    if (r.done) {
      this.filterState = "ready";
      this.filterRebuilt = { keys: this.scanKeys, ms: now - this.scanStartedAt, imageBytes: this.scanImageBytes };
    }
  }

  /**
   * Shutdown, after releaseAll: the dedupe filter goes to the writer, which keeps it for the next
   * start (store/filter-images.ts) so that start need not read the whole window back. One node
   * only (a cluster's window is in JetStream), a filter that is whole (not mid-rebuild) and not
   * past DEDUPE_IMAGE_MAX_BYTES. Its bits are the writer's now: every later send is looked up.
   */
  handOverFilter(): void {
    if (this.io.owns !== undefined || this.filterState !== "ready") return;
    const now = this.io.now();
    const image = this.filter.image(now);
    if (this.filter.bytes > DEDUPE_IMAGE_MAX_BYTES) return;
    this.filterState = "building";
    this.filter = new SentFilter(this.limits.dedupeWindowMs, this.limits.dedupeFilterBytes ?? Infinity);
    this.toWriter({ t: "filterImage", shard: this.io.self, shards: this.io.shards, image });
  }

  /** Shutdown: every connection is treated as gone so its unacked deliveries reach the store. */
  releaseAll(): void {
    this.hot?.clear();
    for (const b of this.boxes.values()) this.release(b);
    this.closeRemember(); // the turn's remember goes now, ahead of the shard's goodbye
  }

  /** Bytes accepted and not yet committed: waiting for sequence numbers or for the writer. */
  get backlogBytes(): number {
    return this.unconfirmedBytes + this.waitingBytes;
  }

  isOnline(user: string): boolean {
    return !!this.boxes.get(user)?.link;
  }

  /**
   * Cluster: whether this shard may have numbered `from`'s id before (its dedupe filter, which
   * outlives the boxes: a resend of a send numbered before a cut, not a new send; dropped-sends.ts).
   */
  mayHaveNumbered(to: string, from: string, id: string): boolean {
    if (id === "") return false;
    const h1 = recentHash(to, from, id);
    return this.filter.mightHave(h1, keyHash[1]!, this.io.now());
  }

  /** Connected and past its backlog drain: new messages go out live (cluster: the order gate). */
  isLive(user: string): boolean {
    return this.boxes.get(user)?.link?.phase === "live";
  }
}

/** A finished rebuild of the dedupe filter: keys read from the store, ms taken, image bytes it began from. */
export type FilterRebuilt = { keys: number; ms: number; imageBytes: number };

/** Approximate memory a route waiting for sequence numbers holds. */
function routeBytes(m: RouteMsg): number {
  return m.body.byteLength + ROW_OVERHEAD_BYTES;
}

/** Messages a confirmable request holds until the writer confirms it (dedupe records are not messages). */
function requestRows(req: AppendReq | RememberReq): number {
  return req.t === "append" ? req.rows.length : 0;
}

/** Approximate memory a confirmable request holds until the writer confirms it. */
function requestBytes(req: AppendReq | RememberReq): number {
  if (req.t === "remember") return req.keys.length * ROW_OVERHEAD_BYTES;
  let n = 0;
  for (const r of req.rows) n += r.body.byteLength + ROW_OVERHEAD_BYTES;
  return n;
}
