// Pure planning for the JetStream writer: which stored rows make a page, and how to delete the
// rows a cumulative ack covers. Rows of one user are normally in the stream in seq order (one
// publisher, FIFO), but a publish retried after a failure can land behind a later one; both plans
// are exact either way.

export interface Placed {
  seq: number;
  streamSeq: number;
}

/** Rows after `after`, in seq order, at most `limit`. */
export function pageAfter<T extends Placed>(rows: readonly T[], after: number, limit: number): T[] {
  return rows.filter((r) => r.seq > after).sort((a, b) => a.seq - b.seq).slice(0, limit);
}

export interface DeletePlan {
  /** Purge the user's subject below this stream seq (null: nothing to purge). */
  purgeBelow: number | null;
  /** Rows at or below `upTo` that sit above a kept row in the stream: deleted one by one. */
  singles: number[];
}

/** `rows` must be every stored row of the user from the start of its subject up to the last one
 * at or below `upTo` (in any order). Nothing with seq > upTo is ever removed. */
export function planDelete(rows: readonly Placed[], upTo: number): DeletePlan {
  let firstKept = Infinity;
  let lastDropped = -1;
  for (const r of rows) {
    if (r.seq > upTo) firstKept = Math.min(firstKept, r.streamSeq);
    else lastDropped = Math.max(lastDropped, r.streamSeq);
  }
  if (lastDropped < 0) return { purgeBelow: null, singles: [] };
  const purgeBelow = Math.min(firstKept, lastDropped + 1);
  const singles = rows.filter((r) => r.seq <= upTo && r.streamSeq >= purgeBelow).map((r) => r.streamSeq);
  return { purgeBelow, singles };
}

/** Where the next page may start reading: the last stream position before which every row read
 * has seq <= lastSeq (so nothing a later page needs lies behind it). -1 if no such position. */
export function cursorAfter(read: readonly Placed[], lastSeq: number): number {
  let cursor = -1;
  for (const r of [...read].sort((a, b) => a.streamSeq - b.streamSeq)) {
    if (r.seq > lastSeq) break;
    cursor = r.streamSeq;
  }
  return cursor;
}

/**
 * `--max-inbox`: which rows fit, in order, given each recipient's stored count. A row that does
 * not fit is "full" unless it is a retry of one already stored (the caller checks that first).
 */
export function planCapacity(
  recipients: readonly string[],
  counts: ReadonlyMap<string, number>,
  max: number,
): boolean[] {
  const n = new Map(counts);
  return recipients.map((u) => {
    const have = n.get(u) ?? 0;
    if (have >= max) return false;
    n.set(u, have + 1);
    return true;
  });
}
