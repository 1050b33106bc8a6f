// Consecutive appends of one port flush as one message to the writer (issue 14, the offline flood).
// A flood into thousands of inboxes makes one append of one row per message; each crossed the port
// as its own object with six typed arrays (packed-append.ts), and the clone on both sides cost more
// than the writer's SQLite work for the row. Here every row of the run of appends goes in columns:
// one string of text, one Float64Array of numbers, one buffer of bodies; `counts` keeps the
// appends apart, so the writer still sees (and confirms) each request in the order it was made.
// Pure functions: pack, check, unpack.

import type { AppendReq, StoredRow } from "./wire.ts";

/**
 * Per row, in `nums`: recipient length, sender length, id length, seq, ts, o, c, body end, and the
 * key's two hashes as the owner routed it (sentKeyHash: h1 a uint32, h2 an int32; h1 = -1 when the
 * append has none), so that the writer does not hash a stored row's key again (issue 14).
 */
const FIELDS = 10;
const UINT32_END = 2 ** 32;
const INT32_MIN = -(2 ** 31);
const INT32_END = 2 ** 31;

export interface PackedAppends {
  t: "appends";
  /** Rows of each append, in order (each ≥ 1). */
  counts: number[];
  /** Every row's recipient, sender and id, back to back. */
  text: string;
  nums: Float64Array;
  /** Every body back to back; row i's body ends at its body end and starts where row i-1's ended. */
  bodies: Uint8Array;
}

/** The appends, in order, as one message. */
export function packAppends(reqs: AppendReq[]): PackedAppends {
  let n = 0;
  let bytes = 0;
  for (const r of reqs) {
    n += r.rows.length;
    for (const row of r.rows) bytes += row.body.byteLength;
  }
  const nums = new Float64Array(n * FIELDS);
  const bodies = new Uint8Array(bytes);
  const counts = new Array<number>(reqs.length);
  let text = "";
  let i = 0;
  let at = 0;
  for (let q = 0; q < reqs.length; q++) {
    const r = reqs[q]!;
    const h = r.h;
    counts[q] = r.rows.length;
    for (let j = 0; j < r.rows.length; j++) {
      const row = r.rows[j]!;
      text += row.recipient + row.sender + row.msgId;
      bodies.set(row.body, at);
      at += row.body.byteLength;
      nums[i++] = row.recipient.length;
      nums[i++] = row.sender.length;
      nums[i++] = row.msgId.length;
      nums[i++] = row.seq;
      nums[i++] = row.ts;
      nums[i++] = r.o[j]!;
      nums[i++] = r.c[j]!;
      nums[i++] = at;
      nums[i++] = h === undefined ? -1 : h[2 * j]!;
      nums[i++] = h === undefined ? 0 : h[2 * j + 1]!;
    }
  }
  return { t: "appends", counts, text, nums, bodies };
}

const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 1;
const isLength = (v: number) => Number.isSafeInteger(v) && v >= 0;

/**
 * Well-formed: counts ≥ 1 adding up to the rows, lengths inside the text, seq ≥ 1 and integer ts,
 * o and c integers, bodies inside the buffer, hashes in range (the checks an AppendReq gets, wire.ts).
 */
export function isPackedAppends(v: unknown): v is PackedAppends {
  return headFits(v) && rowsFit(v, true);
}

/**
 * Laid out right, whatever its rows say: counts, text lengths and body ends add up, so it can be
 * unpacked. A pack that fails isPackedAppends but passes this has a bad row; its appends are then
 * checked one by one (the writer's receive), so one bad row no longer costs the appends beside it.
 */
export function isPackedAppendsShape(v: unknown): v is PackedAppends {
  return headFits(v) && rowsFit(v, false);
}

/** The fields' types, and counts ≥ 1 adding up to the rows the numbers hold. */
function headFits(v: unknown): v is PackedAppends {
  if (typeof v !== "object" || v === null) return false;
  const p = v as Record<string, unknown>;
  if (p.t !== "appends" || typeof p.text !== "string" || !(p.nums instanceof Float64Array)) return false;
  if (!(p.bodies instanceof Uint8Array) || !Array.isArray(p.counts) || p.counts.length === 0) return false;
  if (!p.counts.every(isCount)) return false;
  const rows = (p.counts as number[]).reduce((a, b) => a + b, 0);
  return p.nums.length === rows * FIELDS;
}

/** Lengths inside the text and bodies inside the buffer; with `values`, each row's numbers too. */
function rowsFit(p: PackedAppends, values: boolean): boolean {
  const nums = p.nums;
  let at = 0;
  let end = 0;
  for (let i = 0; i < nums.length; i += FIELDS) {
    if (!isLength(nums[i]!) || !isLength(nums[i + 1]!) || !isLength(nums[i + 2]!)) return false;
    const e = nums[i + 7]!;
    if (!Number.isSafeInteger(e) || e < end) return false;
    end = e;
    at += nums[i]! + nums[i + 1]! + nums[i + 2]!;
    if (values && !rowValuesFit(nums, i)) return false;
  }
  return at === p.text.length && end <= p.bodies.byteLength;
}

/** Row i's seq ≥ 1, integer ts, o and c, and hashes in range. */
function rowValuesFit(nums: Float64Array, i: number): boolean {
  const seq = nums[i + 3]!;
  if (!Number.isSafeInteger(seq) || seq < 1 || !Number.isSafeInteger(nums[i + 4]!)) return false;
  if (!Number.isSafeInteger(nums[i + 5]!) || !Number.isSafeInteger(nums[i + 6]!)) return false;
  return isRowHash(nums[i + 8]!, nums[i + 9]!);
}

/** A row's key hashes: h1 a uint32 (or -1: none) and h2 an int32. */
export function isRowHash(h1: number, h2: number): boolean {
  return Number.isInteger(h1) && h1 >= -1 && h1 < UINT32_END && Number.isInteger(h2) && h2 >= INT32_MIN &&
    h2 < INT32_END;
}

/** Back to the owners' appends (call only on a checked one); bodies are views into the buffer. */
export function unpackAppends(p: PackedAppends): AppendReq[] {
  const out = new Array<AppendReq>(p.counts.length);
  let i = 0;
  let at = 0;
  let start = 0;
  for (let q = 0; q < p.counts.length; q++) {
    const n = p.counts[q]!;
    const rows = new Array<StoredRow>(n);
    const o = new Array<number>(n);
    const c = new Array<number>(n);
    const h = new Array<number>(2 * n);
    for (let j = 0; j < n; j++, i += FIELDS) {
      const recipient = p.text.slice(at, at += p.nums[i]!);
      const sender = p.text.slice(at, at += p.nums[i + 1]!);
      const msgId = p.text.slice(at, at += p.nums[i + 2]!);
      const end = p.nums[i + 7]!;
      rows[j] = {
        recipient,
        seq: p.nums[i + 3]!,
        sender,
        msgId,
        ts: p.nums[i + 4]!,
        body: p.bodies.subarray(start, end),
      };
      start = end;
      o[j] = p.nums[i + 5]!;
      c[j] = p.nums[i + 6]!;
      h[2 * j] = p.nums[i + 8]!;
      h[2 * j + 1] = p.nums[i + 9]!;
    }
    out[q] = { t: "append", rows, o, c, h };
  }
  return out;
}
