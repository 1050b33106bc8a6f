// A drain's page from blobs of whole stored frames (issue 14). SQLite joins each stretch of a
// user's rows (stored DELIVER head + body) into one blob (store/inbox-log.ts fetchFrameBlobs), so a
// page costs the writer one value per stretch instead of three per row; this walks the frames for
// the seqs and ends a FramePage carries, and cuts the page at its byte budget as framePageOf cuts.
// It also proves what the SQL does not promise: every frame whole, seqs strictly ascending from
// `after`. Anything else gives null, and the writer reads the rows one by one. Pure.
// A v0 link's page is the rows' bodies alone (pageOfBodyBlobs): the bytes its socket gets.

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

/** A stretch of a v0 link's rows (store/inbox-log.ts fetchBodyBlobs): bodies, seqs and lengths as JSON. */
export interface BodyStretch {
  b: Uint8Array | null;
  s: string;
  z: string;
}

/** A JSON array of non-negative integers, or null. */
function intArray(json: string): number[] | null {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (!Array.isArray(v)) return null;
  for (const x of v) if (!Number.isSafeInteger(x) || x < 0) return null;
  return v as number[];
}

/**
 * A v0 link's page from stretches of bodies (FramePage.bodies): cut at the byte budget as
 * pageOfBlobs cuts, each row's length from its stretch's lengths. Proves what the SQL does not
 * promise: as many seqs as lengths, lengths adding up to the bytes, seqs strictly ascending from
 * `after`. Anything else gives null, and the writer reads frames instead.
 */
export function pageOfBodyBlobs(
  stretches: readonly BodyStretch[],
  limit: number,
  maxBytes: number,
  after: number,
): BlobPage | null {
  const seqs: number[] = [];
  const ends: number[] = [];
  let end = 0;
  let bytes = 0;
  let prev = after;
  for (const st of stretches) {
    const q = intArray(st.s);
    const z = intArray(st.z);
    const n = st.b?.length ?? 0;
    if (q === null || z === null || q.length !== z.length || z.reduce((a, b) => a + b, 0) !== n) return null;
    for (let i = 0; i < q.length; i++) {
      if (!(q[i]! > prev)) return null;
      const cost = z[i]! + ROW_OVERHEAD_BYTES;
      if (bytes + cost > maxBytes && seqs.length > 0) return bodyPage(stretches, seqs, ends, true, bytes);
      bytes += cost;
      end += z[i]!;
      seqs.push(q[i]!);
      ends.push(end);
      prev = q[i]!;
    }
  }
  return bodyPage(stretches, seqs, ends, seqs.length === limit, bytes);
}

function bodyPage(
  stretches: readonly BodyStretch[],
  seqs: number[],
  ends: number[],
  more: boolean,
  bytes: number,
): BlobPage {
  const p = page(joined(stretches.flatMap((st) => st.b === null ? [] : [st.b])), seqs, ends, more, bytes);
  p.frames.bodies = true;
  return p;
}
