// Owner hand-over in the cluster (docs/CLUSTER.md, "Owner hand-over"): which stored rows of a
// user the current owner may treat as its own backlog, and which are late writes of another owner
// that it must re-sequence ("adopt") before anyone may delete them.
//
// An owner's writer holds a *claim* per user it owns: made when the owner reserves the user's
// first seq block (the KV compare-and-set makes that block the claim's epoch boundary `first`),
// dropped when placement moves the user away or the node comes back from a cut. Every row the
// writer stores carries the tag of its claim when the append arrived (header Iris-Owner; `tagOf`). A row of another tag is *foreign*:
//   - served: a drain page of this claim delivered it in seq order (the backlog the previous owner
//     left, numbered below this claim's block): it is deleted by the recipient's ack as usual;
//   - late: anything else. Either it landed after the recipient already had higher seqs (an old
//     owner's append finishing after the move), or a stale owner numbered it from a block above
//     this claim's. Delivered as it is, the recipient's SDK would drop it (seq not above its last)
//     or this owner's next seqs would go backwards. So it is adopted: the owner gives it a new seq
//     from its own block and delivers or stores it like a new message (its sender already heard
//     "stored"; no second ack), and the old copy is deleted only once the new seq is acked.
// Late rows are never deleted by a cumulative ack before they are adopted: that was the way a
// stored message could have been lost.

import type { ReadRow } from "./inbox-codec.ts";

/** After a placement change (or a heal), appends are announced on LATE_SUBJECT for this long. */
export const SETTLE_MS = 10_000;
/** After users move here, their inboxes are re-read this long after the change (late writes). */
export const RECHECK_AFTER_MS = [1000, 4000] as const;
/** A recheck whose rows could not get seqs yet (reservation in flight) runs again after this. */
export const ADOPT_RETRY_MS = 300;
/** ...at most this many times (the next poke, recheck or login drain finds them otherwise). */
export const ADOPT_RETRIES = 20;
/** Core NATS subject on which writers announce users they stored rows for while owners moved. */
export const LATE_SUBJECT = "iris.late";
/** Core NATS subject on which a shard says it (re)started, with its global address: sessions on
 * other nodes re-attach the users it owns (its owner state died with the old thread). */
export const STARTED_SUBJECT = "iris.started";
/** Core NATS subject on which a shard says it owns again after a cut (its owner state was dropped
 * at the fence). Other nodes hear it on STARTED_SUBJECT too; this one is for the shard's siblings on
 * the same node, whose sessions must re-attach the users it owns (no supervisor event tells them:
 * the thread did not restart). */
export const REGAINED_SUBJECT = "iris.regained";
/** Released claims kept per writer, newest last (a delete asked after the release is judged under one). */
export const RELEASED_KEEP = 50_000;
/** Most users named in one announcement (a larger append is announced in several). */
export const LATE_MAX_USERS = 1000;

export interface Claim {
  readonly tag: string;
  /** First seq of the claim's first block: every seq this claim hands out is at least this. */
  readonly first: number;
  /** Last seq of the claim's latest block. */
  last: number;
  /** Boxes whose first seq lies in [from, last] ask their deletes under this claim: its own blocks,
   * and those of the claim of this writer it superseded (the same boxes number on across it). */
  readonly from: number;
  /** Where the claim before this one began (0: none known): its rows are the backlog it left. */
  readonly prevFirst: number;
  /** Stream seqs of foreign rows a drain page of this claim delivered. */
  readonly served: Set<number>;
  /** Stream seq of a foreign row -> the seq it was adopted under. */
  readonly adopted: Map<number, number>;
  /** When it was opened (performance.now()): a young claim may still see late rows (order-gate.ts). */
  readonly at: number;
}

/** How a foreign row read by a drain page or a delete is to be treated. */
export type Verdict = "own" | "served" | "adopted" | "late";

export class Claims {
  private readonly byUser = new Map<string, Claim>();
  /** The last claim released per user (insertion = release order; bounded by RELEASED_KEEP). */
  private readonly released = new Map<string, Claim>();
  private made = 0;

  /** `nonce` tells this writer's claims from any other writer's (random per process). */
  constructor(readonly nonce: string) {}

  get size(): number {
    return this.byUser.size;
  }

  /** A seq block was reserved for `user`: the first one opens a claim (later ones keep it). */
  reserved(user: string, first: number, prevFirst = 0, now = performance.now(), last = first): void {
    if (!this.byUser.has(user)) this.opened(user, first, prevFirst, now, last);
    else this.extended(user, last);
  }

  /** A later block of the current claim: it covers up to `last` now. */
  extended(user: string, last: number): void {
    const c = this.byUser.get(user);
    if (c) c.last = Math.max(c.last, last);
  }

  /**
   * A reservation opened a claim in the KV: it is this writer's claim on `user` from now on, also
   * over one it held (that one was superseded: another owner opened a claim since, and numbered
   * above this writer's rows; rows of the old tag become foreign, so that they are adopted rather
   * than skipped below a client's resume point and acked away). What the old claim served or
   * adopted stays so.
   */
  opened(user: string, first: number, prevFirst: number, now = performance.now(), last = first): void {
    const old = this.byUser.get(user);
    const tag = `${this.nonce}.${++this.made}`;
    this.byUser.set(user, {
      tag,
      first,
      last,
      from: old?.from ?? first,
      prevFirst,
      served: old?.served ?? new Set(),
      adopted: old?.adopted ?? new Map(),
      at: now,
    });
  }

  /** When `user`'s claim was opened (undefined: no claim here). */
  openedAt(user: string): number | undefined {
    return this.byUser.get(user)?.at;
  }

  has(user: string): boolean {
    return this.byUser.has(user);
  }

  /**
   * The tag rows for `user` are stored with: the current claim's, or one no claim matches. Taken
   * once per append request, when it arrives (JsWriter.accept): taken again when a failed append
   * ran a second time, after a cut, it was the claim the regain had just opened, and the rows of
   * the old block counted as that claim's own and were deleted by its acks undelivered
   * (full-size split-brain: 5 and 15 acked messages lost).
   */
  tagOf(user: string): string {
    return this.byUser.get(user)?.tag ?? `${this.nonce}.0`;
  }

  /**
   * Drops the claims of users that moved away (or all of them, after a cut). The last one of each
   * is kept aside for the deletes its boxes still ask for (`forDelete`).
   */
  release(moved: (user: string) => boolean): void {
    for (const [u, c] of [...this.byUser]) {
      if (!moved(u)) continue;
      this.byUser.delete(u);
      this.released.delete(u);
      this.released.set(u, c);
    }
    for (const u of this.released.keys()) {
      if (this.released.size <= RELEASED_KEEP) break;
      this.released.delete(u);
    }
  }

  /**
   * The claim a delete from the box whose first seq is `boxFirst` is judged under: the one whose
   * blocks hold that seq, current or last released. Null when neither does: the delete is skipped.
   * Judged under another claim, "acked up to n" counts that claim's rows at or below n as seen,
   * though the box that asked never served them (split-brain full size: a box's rows landed after
   * the client had moved on to another owner's block; the ack of a later box of the same node,
   * judged under the old claim, deleted them). A box's delete judged with no claim at all counted
   * every row as its own, another owner's late ones too. Without `boxFirst` (an operator's purge of
   * the whole inbox): the current claim, or none (every row goes).
   */
  forDelete(user: string, boxFirst?: number): Claim | undefined | null {
    const c = this.byUser.get(user);
    if (boxFirst === undefined) return c;
    if (c !== undefined && boxFirst >= c.from && boxFirst <= c.last) return c;
    const r = this.released.get(user);
    if (r !== undefined && boxFirst >= r.from && boxFirst <= r.last) return r;
    return null;
  }

  /** The user's claim now: a delete is judged under the claim its owner had when it asked. */
  current(user: string): Claim | undefined {
    return this.byUser.get(user);
  }

  verdict(r: ReadRow): Verdict {
    return this.verdictUnder(this.byUser.get(r.to), r);
  }

  /** A row's verdict under claim `c` (undefined: a writer without a claim, every row its own). */
  verdictUnder(c: Claim | undefined, r: ReadRow): Verdict {
    if (!c || r.owner === c.tag) return "own";
    if (c.served.has(r.streamSeq)) return "served";
    return c.adopted.has(r.streamSeq) ? "adopted" : "late";
  }

  /**
   * A drain page after `after` (the link's cursor): a foreign row numbered above the cursor, from
   * the previous claim's start up to this claim's, is the previous owner's backlog, delivered in
   * seq order (served). One numbered below the previous claim's start came from an earlier owner
   * whose seqs the recipient may already have passed (a row that landed after the others had
   * moved on): it is adopted, which is always safe. Returns the rows the page may deliver and the
   * late ones to adopt.
   */
  page(rows: readonly ReadRow[], after: number): { keep: ReadRow[]; late: ReadRow[] } {
    const keep: ReadRow[] = [], late: ReadRow[] = [];
    for (const r of rows) {
      const v = this.verdict(r);
      if (v === "own" || v === "served") keep.push(r);
      else if (v === "late" && r.seq > after && this.previous(r)) {
        this.byUser.get(r.to)!.served.add(r.streamSeq);
        keep.push(r);
      } else if (v === "late") late.push(r);
    }
    return { keep, late };
  }

  /** Numbered by the claim just before this one. */
  private previous(r: ReadRow): boolean {
    const c = this.byUser.get(r.to)!;
    return r.seq >= c.prevFirst && r.seq < c.first;
  }

  /** The seq a cumulative ack compares a stored row with: late rows are kept, adopted ones go
   * with their new seq. Returns null for a late row. */
  ackSeq(r: ReadRow, c = this.byUser.get(r.to)): number | null {
    const v = this.verdictUnder(c, r);
    if (v === "late") return null;
    return v === "adopted" ? c!.adopted.get(r.streamSeq)! : r.seq;
  }

  /** The owner gave these late rows seqs (0: not yet); returns how many are still waiting. */
  adopted(user: string, rows: readonly ReadRow[], seqs: readonly number[]): number {
    const c = this.byUser.get(user);
    let waiting = 0;
    rows.forEach((r, i) => {
      if (c && seqs[i]! > 0) c.adopted.set(r.streamSeq, seqs[i]!);
      else waiting++;
    });
    return waiting;
  }

  /** Rows deleted from the stream: their marks are no longer needed. */
  forget(user: string, streamSeqs: Iterable<number>, c = this.byUser.get(user)): void {
    if (!c) return;
    for (const s of streamSeqs) {
      c.served.delete(s);
      c.adopted.delete(s);
    }
  }

  /** Everything deleted below a purge point. */
  forgetBelow(user: string, streamSeq: number, c = this.byUser.get(user)): void {
    if (!c) return;
    for (const s of c.served) if (s < streamSeq) c.served.delete(s);
    for (const s of c.adopted.keys()) if (s < streamSeq) c.adopted.delete(s);
  }
}

/** The payload of an announcement on LATE_SUBJECT: the users, as a JSON array of strings. */
export function encodeLate(users: readonly string[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(users));
}

/** Null for anything but a JSON array of at most LATE_MAX_USERS non-empty strings (garbage). */
export function decodeLate(data: Uint8Array): string[] | null {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch {
    return null;
  }
  if (!Array.isArray(v) || v.length > LATE_MAX_USERS) return null;
  return v.every((u) => typeof u === "string" && u.length > 0 && u.length <= 256) ? v as string[] : null;
}
