// A `remember` as it crosses the port to the writer (issue 14): its keys in one string and one
// number array instead of one object per key. Every live v1 message settles one key, and cloning
// an object per key across the port measured ~4 µs per key (both ends, build included) against
// ~1.5-2.2 µs packed. Owners keep building RememberReq; the port packs it (ports.ts) and the
// writers unpack it on arrival. Pure functions: pack, check, unpack.

import type { RememberReq, SentKey } from "./wire.ts";

/** Per key, in `nums`: recipient length, sender length, id length, seq, ts. */
const FIELDS = 5;

export interface PackedRemember {
  t: "rememberPacked";
  /** Every key's recipient, sender and id, back to back. */
  text: string;
  nums: number[];
}

export function packRemember(r: RememberReq): PackedRemember {
  let text = "";
  const nums = new Array<number>(r.keys.length * FIELDS);
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
  if (typeof text !== "string" || !Array.isArray(nums) || nums.length % FIELDS !== 0) return false;
  let at = 0;
  for (let i = 0; i < nums.length; i += FIELDS) {
    const [a, b, c, seq, ts] = [nums[i], nums[i + 1], nums[i + 2], nums[i + 3], nums[i + 4]];
    if (!isLength(a) || !isLength(b) || !isLength(c) || c === 0) return false;
    if (!Number.isSafeInteger(seq) || (seq as number) < 1 || !Number.isSafeInteger(ts)) return false;
    at += (a as number) + (b as number) + (c as number);
  }
  return at === text.length;
}

const isLength = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

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
