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
}

interface Ahead extends PageRead {
  after: number;
  limit: number;
  maxBytes: number;
}

export class PageAhead {
  private readonly pages = new Map<string, Ahead>();

  /** The page read ahead for exactly this request, if any (handed out once). */
  take(r: FetchReq): PageRead | undefined {
    const a = this.pages.get(r.user);
    if (a === undefined) return undefined;
    this.pages.delete(r.user);
    if (a.after !== r.after || a.limit !== r.limit || a.maxBytes !== r.maxBytes) return undefined;
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
