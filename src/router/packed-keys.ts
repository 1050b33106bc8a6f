// A `remember` as it crosses the port to the writer (issue 14): its keys in one string and one
// Float64Array instead of one object per key. Every live v1 message settles one key, and cloning
// an object per key across the port measured ~4 µs per key (both ends, build included) against
// ~1.5-2.2 µs packed; a Float64Array clones as one copy where a number[] is walked element by
// element (0.19 vs 0.36 µs per key to clone, each end). Owners keep building RememberReq; the port packs it (ports.ts) and the
// writers unpack it on arrival. Pure functions: pack, check, unpack.

import type { RememberReq, SentKey } from "./wire.ts";

/** Per key, in `nums`: recipient length, sender length, id length, seq, ts. */
const FIELDS = 5;

export interface PackedRemember {
  t: "rememberPacked";
  /** Every key's recipient, sender and id, back to back. */
  text: string;
  nums: Float64Array;
}

export function packRemember(r: RememberReq): PackedRemember {
  let text = "";
  const nums = new Float64Array(r.keys.length * FIELDS);
  let i = 0;
  for (const k of r.keys) {
    text += k.recipient + k.sender + k.msgId;
    nums[i++] = k.recipient.length;
    nums[i++] = k.sender.length;
    nums[i++] = k.msgId.length;
    nums[i++] = k.seq;
    nums[i++] = k.ts;
  }
  return { t: "rememberPacked", text, nums };
}

/** The checks a RememberReq's keys get: lengths inside the text, non-empty id, seq ≥ 1, integer ts. */
export function isPackedRememberBody(text: unknown, nums: unknown): boolean {
  if (typeof text !== "string" || !(nums instanceof Float64Array) || nums.length % FIELDS !== 0) return false;
  let at = 0;
  for (let i = 0; i < nums.length; i += FIELDS) {
    const a = nums[i]!, b = nums[i + 1]!, c = nums[i + 2]!; // no array per key: the writer checks each
    if (!isLength(a) || !isLength(b) || !isLength(c) || c === 0) return false;
    const seq = nums[i + 3]!;
    if (!Number.isSafeInteger(seq) || seq < 1 || !Number.isSafeInteger(nums[i + 4])) return false;
    at += a + b + c;
  }
  return at === text.length;
}

const isLength = (v: number) => Number.isSafeInteger(v) && v >= 0;

/** Back to the owner's shape (call only on a checked one). */
export function unpackRemember(p: PackedRemember): RememberReq {
  const keys: SentKey[] = new Array<SentKey>(p.nums.length / FIELDS);
  let at = 0;
  for (let i = 0, k = 0; i < p.nums.length; i += FIELDS, k++) {
    const recipient = p.text.slice(at, at += p.nums[i]!);
    const sender = p.text.slice(at, at += p.nums[i + 1]!);
    const msgId = p.text.slice(at, at += p.nums[i + 2]!);
    keys[k] = { recipient, sender, msgId, seq: p.nums[i + 3]!, ts: p.nums[i + 4]! };
  }
  return { t: "remember", keys };
}
