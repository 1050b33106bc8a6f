// Reading a drain's next page ahead (issue 14). When the writer answers a fetch with a full page
// (more rows wait), it reads the next page at once, while the shard writes this one to the socket
// and the client reads it: on two cores the read overlaps the write instead of following it. The
// next fetch of that user from exactly where the page ended, with the same budget, takes the page
// read ahead. Anything that could change what a fresh read returns drops it first: an append (of
// any user: a drain must see rows stored before its fetch, or it would go live too early), a
// delete reaching past the page's start, expiry, a failed transaction. Pure bookkeeping; the
// writer does the reads.

import type { FetchReq } from "../router/wire.ts";
import type { FramePage } from "../router/frame-page.ts";

/** Pages held ahead at most (each at most a page's byte budget, 1 MiB): the oldest goes first. */
export const PAGES_AHEAD_MAX = 4;

export interface PageRead {
  frames: FramePage;
  more: boolean;
  /** The bytes the page's rows counted against its budget (body + ROW_OVERHEAD_BYTES each). */
  bytes: number;
}

interface Ahead extends PageRead {
  after: number;
  limit: number;
  maxBytes: number;
}

/** Users whose last page's bytes per row are remembered (to size a page read without one ahead). */
export const ROW_COSTS_MAX = 256;

export class PageAhead {
  private readonly pages = new Map<string, Ahead>();
  private readonly costs = new Map<string, number>();

  /** Bytes a row of `user`'s last page counted (body + overhead), 0 if not remembered. */
  rowCost(user: string): number {
    return this.costs.get(user) ?? 0;
  }

  /** Remembers the bytes a row of `user`'s page counted; the oldest user is forgotten first. */
  noteRowCost(user: string, page: PageRead): void {
    const n = page.frames.seqs.length;
    if (n === 0) return;
    this.costs.delete(user);
    this.costs.set(user, page.bytes / n);
    if (this.costs.size > ROW_COSTS_MAX) this.costs.delete(this.costs.keys().next().value!);
  }

  /**
   * The page read ahead for exactly this request, if any (handed out once). A page of bodies alone
   * (a v0 link's) goes only to a fetch that asked for one; a page of frames suits any.
   */
  take(r: FetchReq): PageRead | undefined {
    const a = this.pages.get(r.user);
    if (a === undefined) return undefined;
    this.pages.delete(r.user);
    if (a.after !== r.after || a.limit !== r.limit || a.maxBytes !== r.maxBytes) return undefined;
    if (a.frames.bodies && !r.bodies) return undefined;
    return a;
  }

  put(user: string, after: number, limit: number, maxBytes: number, page: PageRead): void {
    this.pages.delete(user); // re-inserted last: the map's order is the eviction order
    this.pages.set(user, { ...page, after, limit, maxBytes });
    if (this.pages.size > PAGES_AHEAD_MAX) this.pages.delete(this.pages.keys().next().value!);
  }

  /** A delete up to `upTo` for `user`: a page starting below it would show deleted rows. */
  deleted(user: string, upTo: number): void {
    const a = this.pages.get(user);
    if (a !== undefined && upTo > a.after) this.pages.delete(user);
  }

  clear(): void {
    this.pages.clear();
  }

  get size(): number {
    return this.pages.size;
  }
}
