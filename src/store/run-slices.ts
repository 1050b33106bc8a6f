// A dedupe run's keys as slices (issue 14, migration 11): the run's (53-bit hash, log id) pairs,
// sorted by hash then id, cut into blobs of RUN_SLICE_KEYS pairs, each stored as one row keyed by
// its last pair. A row per key cost the writer 0.7-1.0 µs of its 2.7-3.7 µs a logged key
// (`bench/store-micro.ts settle`, measured in session 35); a row per slice is ~140 rows a run.
// A probe reads the first slice whose last pair is at or past the hash, and the next ones while
// the hash goes on. Pure: the rows are read and written by sent-runs.ts.

import { float64sOf } from "./blob-words.ts";

/**
 * Pairs a slice holds: 16 bytes each, 3,840 bytes, so that a row (its key and blob) stays within
 * what a 16 KiB page of a WITHOUT ROWID table keeps in the page (~4,086 bytes) with no overflow page.
 */
export const RUN_SLICE_KEYS = 240;

/** One slice: its last pair (the row's key) and its pairs as float64s [h, id, h, id, ...]. */
export interface RunSlice {
  lastH: number;
  lastId: number;
  pairs: Float64Array;
}

/** Cuts pairs already sorted by (h, id), given as `h(i)` and `id(i)` for i < n, into slices. */
export function sliceRun(n: number, h: (i: number) => number, id: (i: number) => number): RunSlice[] {
  const slices: RunSlice[] = [];
  for (let start = 0; start < n; start += RUN_SLICE_KEYS) {
    const end = Math.min(n, start + RUN_SLICE_KEYS);
    const pairs = new Float64Array(2 * (end - start));
    for (let i = start; i < end; i++) {
      pairs[2 * (i - start)] = h(i);
      pairs[2 * (i - start) + 1] = id(i);
    }
    slices.push({ lastH: pairs[pairs.length - 2]!, lastId: pairs[pairs.length - 1]!, pairs });
  }
  return slices;
}

/** A stored slice's blob as its pairs (blob-words.ts). */
export function slicePairs(blob: Uint8Array): Float64Array {
  if (blob.byteLength % 16 !== 0) throw new Error(`sent_run_slices: a slice of ${blob.byteLength} bytes`);
  return float64sOf(blob);
}

/**
 * Pushes to `ids` the ids stored under hash `h` in one slice, ascending. Returns true when the
 * slice ends on `h` (the next slice may hold more of them), false when the search is over.
 */
export function idsInSlice(pairs: Float64Array, h: number, ids: number[]): boolean {
  const n = pairs.length / 2;
  let lo = 0, hi = n; // first pair with hash >= h
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pairs[2 * mid]! < h) lo = mid + 1;
    else hi = mid;
  }
  let i = lo;
  for (; i < n && pairs[2 * i] === h; i++) ids.push(pairs[2 * i + 1]!);
  return i === n && n > 0 && pairs[2 * (n - 1)] === h;
}
