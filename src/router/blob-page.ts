// A drain's page from blobs of whole stored frames (issue 14). SQLite joins each stretch of a
// user's rows (stored DELIVER head + body) into one blob (store/inbox-log.ts fetchFrameBlobs), so a
// page costs the writer one value per stretch instead of three per row; this walks the frames for
// the seqs and ends a FramePage carries, and cuts the page at its byte budget as framePageOf cuts.
// It also proves what the SQL does not promise: every frame whole, seqs strictly ascending from
// `after`. Anything else gives null, and the writer reads the rows one by one. Pure.

import { ROW_OVERHEAD_BYTES } from "../limits.ts";
import { readU32, readU64 } from "../protocol/bytes.ts";
import { V1 } from "../protocol/v1.ts";
import { DELIVER_FIXED_BYTES } from "../protocol/v1-bundle.ts";
import type { FramePage } from "./frame-page.ts";

/** A page and what its rows counted against the budget (store/page-ahead.ts PageRead). */
export interface BlobPage {
  frames: FramePage;
  more: boolean;
  bytes: number;
}

/** Where the frame starting at `at` ends and its body's length; null if it is not whole. */
function frameAt(b: Uint8Array, at: number): { end: number; bodyLen: number } | null {
  if (at + DELIVER_FIXED_BYTES > b.length || b[at] !== V1.DELIVER) return null;
  const fl = b[at + 17]!;
  if (at + 19 + fl > b.length) return null;
  const lenAt = at + 19 + fl + b[at + 18 + fl]!;
  if (lenAt + 4 > b.length) return null;
  const bodyLen = readU32(b, lenAt);
  const end = lenAt + 4 + bodyLen;
  return end > b.length ? null : { end, bodyLen };
}

/** The blobs back to back (one blob is taken as it is). */
function joined(blobs: readonly Uint8Array[]): Uint8Array {
  if (blobs.length === 1) return blobs[0]!;
  let n = 0;
  for (const b of blobs) n += b.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const b of blobs) out.set(b, at), at += b.length;
  return out;
}

/**
 * The page the blobs hold: `limit` is the rows asked of SQLite (all of them read: `more`), and the
 * page is cut before the row that would take it over `maxBytes` (always keeping one row). A cut page
 * is a view of the blob (nothing copied; the rows past it go along in the transferred buffer).
 */
export function pageOfBlobs(
  blobs: readonly Uint8Array[],
  limit: number,
  maxBytes: number,
  after: number,
): BlobPage | null {
  const all = joined(blobs);
  const seqs: number[] = [];
  const ends: number[] = [];
  let at = 0;
  let bytes = 0;
  let prev = after;
  while (at < all.length) {
    const f = frameAt(all, at);
    if (f === null) return null;
    const seq = readU64(all, at + 1);
    if (!(seq > prev)) return null;
    const cost = f.bodyLen + ROW_OVERHEAD_BYTES;
    if (bytes + cost > maxBytes && seqs.length > 0) return page(all, seqs, ends, true, bytes);
    bytes += cost;
    seqs.push(seq);
    ends.push(f.end);
    prev = seq;
    at = f.end;
  }
  return page(all, seqs, ends, seqs.length === limit, bytes);
}

function page(all: Uint8Array, seqs: number[], ends: number[], more: boolean, bytes: number): BlobPage {
  const end = ends.length === 0 ? 0 : ends[ends.length - 1]!;
  return {
    frames: {
      seqs: Float64Array.from(seqs),
      frames: end === all.length ? all : all.subarray(0, end),
      ends: Uint32Array.from(ends),
    },
    more,
    bytes,
  };
}
