// An `append` as it crosses the port to the writer (issue 14): one recipient's rows in columns
// (the backlog page's layout, packed-page.ts) instead of one object and one body per row, which
// clone several times slower. Only an append of one recipient with ascending seqs (what owners
// send) is packed; any other goes as it is. Pure functions: pack, check, unpack.

import { isPackedPage, type PackedPage, packRows, unpackRows } from "./packed-page.ts";
import type { AppendReq } from "./wire.ts";

export interface PackedAppend {
  t: "appendPacked";
  recipient: string;
  page: PackedPage;
  /** Per row: origin shard/conn for the sender's "stored" ack, as in AppendReq. */
  o: number[];
  c: number[];
}

/** The packed form, or the request itself when it does not fit one (see header). */
export function packAppend(r: AppendReq): AppendReq | PackedAppend {
  const first = r.rows[0];
  if (!first) return r;
  let prev = 0;
  for (const row of r.rows) {
    if (row.recipient !== first.recipient || !(row.seq > prev)) return r;
    prev = row.seq;
  }
  return { t: "appendPacked", recipient: first.recipient, page: packRows(r.rows), o: r.o, c: r.c };
}

const isInts = (v: unknown, n: number) => Array.isArray(v) && v.length === n && v.every(Number.isSafeInteger);

/** Well-formed: a valid page (ascending integer seqs ≥ 1, bodies inside the buffer), o and c per row. */
export function isPackedAppendBody(v: Record<string, unknown>): boolean {
  if (typeof v.recipient !== "string" || !isPackedPage(v.page)) return false;
  const n = v.page.seqs.length;
  return n > 0 && isInts(v.o, n) && isInts(v.c, n);
}

/** Back to the owner's shape (call only on a checked one); bodies are views into the page. */
export function unpackAppend(p: PackedAppend): AppendReq {
  return { t: "append", rows: unpackRows(p.page, p.recipient), o: p.o, c: p.c };
}
