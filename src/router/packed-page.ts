// A backlog page in columns (issue 14): the writer sends a page as a few typed arrays and one
// buffer of bodies instead of one object per row. Crossing a port clones each row object and its
// body separately, which measured ~1.5-3.7 µs per row, most of the writer's cost in a drain; the
// columns clone in ~0.3-0.7 µs per row. Pure functions: pack, check, read back.

import type { Delivery, StoredRow } from "./wire.ts";

export interface PackedPage {
  seqs: Float64Array;
  tss: Float64Array;
  senders: string[];
  ids: string[];
  /** Every body back to back; row i's body ends at ends[i] (and starts where row i-1's ended). */
  bodies: Uint8Array;
  ends: Uint32Array;
}

/** The rows (of one recipient, seq ascending) as columns. */
export function packRows(rows: StoredRow[]): PackedPage {
  const n = rows.length;
  let bytes = 0;
  for (const r of rows) bytes += r.body.byteLength;
  const p: PackedPage = {
    seqs: new Float64Array(n),
    tss: new Float64Array(n),
    senders: new Array<string>(n),
    ids: new Array<string>(n),
    bodies: new Uint8Array(bytes),
    ends: new Uint32Array(n),
  };
  let at = 0;
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    p.bodies.set(r.body, at);
    at += r.body.byteLength;
    p.ends[i] = at;
    p.seqs[i] = r.seq;
    p.tss[i] = r.ts;
    p.senders[i] = r.sender;
    p.ids[i] = r.msgId;
  }
  return p;
}

const isStrings = (v: unknown, n: number) =>
  Array.isArray(v) && v.length === n && v.every((s) => typeof s === "string");

/** A well-formed page: equal column lengths, seqs ascending integers ≥ 1, bodies inside the buffer. */
export function isPackedPage(v: unknown): v is PackedPage {
  if (typeof v !== "object" || v === null) return false;
  const p = v as Record<string, unknown>;
  if (!(p.seqs instanceof Float64Array) || !(p.tss instanceof Float64Array)) return false;
  if (!(p.bodies instanceof Uint8Array) || !(p.ends instanceof Uint32Array)) return false;
  const n = p.seqs.length;
  if (p.tss.length !== n || p.ends.length !== n || !isStrings(p.senders, n) || !isStrings(p.ids, n)) return false;
  let prevSeq = 0;
  let prevEnd = 0;
  for (let i = 0; i < n; i++) {
    const seq = p.seqs[i]!;
    if (!Number.isSafeInteger(seq) || seq <= prevSeq || !Number.isSafeInteger(p.tss[i]!)) return false;
    if (p.ends[i]! < prevEnd) return false;
    prevSeq = seq;
    prevEnd = p.ends[i]!;
  }
  return prevEnd <= p.bodies.byteLength;
}

/** Deliveries for the rows above `afterSeq`; bodies are views into the page's buffer (no copy). */
export function pageDeliveries(p: PackedPage, afterSeq: number): Delivery[] {
  const out: Delivery[] = [];
  for (let i = 0; i < p.seqs.length; i++) {
    const seq = p.seqs[i]!;
    if (seq <= afterSeq) continue;
    const body = p.bodies.subarray(i === 0 ? 0 : p.ends[i - 1]!, p.ends[i]!);
    out.push({ seq, ts: p.tss[i]!, from: p.senders[i]!, id: p.ids[i]!, body, t0: 0 });
  }
  return out;
}

/** The page as rows again (for readers that want rows, e.g. tests). */
export function unpackRows(p: PackedPage, recipient: string): StoredRow[] {
  return pageDeliveries(p, 0).map((d) => ({
    recipient,
    seq: d.seq,
    sender: d.from,
    msgId: d.id,
    ts: d.ts,
    body: d.body,
  }));
}
