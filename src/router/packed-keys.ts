// A `remember` as it crosses the port to the writer (issue 14): its keys in one string and one
// number column instead of one object per key. Every live v1 message settles one key, and cloning
// an object per key across the port measured ~4 µs per key (both ends, build included) against
// ~1.5-2.2 µs packed. The column is a Float64Array from TYPED_MIN_KEYS keys on (it clones as one
// copy where a number[] is walked element by element), a number[] below (a typed array's fixed
// cost to allocate and clone is larger than that walk for a few keys: paced load settles one key
// per turn). Owners keep building RememberReq; the port packs it (ports.ts) and the
// writers unpack it on arrival. Pure functions: pack, check, unpack.

import { sentKeyHash } from "./sent-filter.ts";
import type { RememberReq, SentKey } from "./wire.ts";

/**
 * Per key, in `nums`: recipient length, sender length, id length, seq, ts, and the key's two
 * hashes (sentKeyHash: h1 a uint32, h2 an int32), so that the writer does not hash it again.
 */
export const REMEMBER_FIELDS = 7;
const FIELDS = REMEMBER_FIELDS;
const UINT32_END = 2 ** 32;
const INT32_MIN = -(2 ** 31);
const INT32_END = 2 ** 31;
/**
 * Keys from which `nums` is a Float64Array. Pack, clone, check and unpack per key, number[] vs
 * Float64Array (bun, µs): 1 key 2.4 vs 3.6, 4 keys 0.98 vs 1.58, 16 keys 0.46 vs 0.47, 24 keys
 * 0.39 vs 0.38, 60 keys 0.36 vs 0.25.
 */
const TYPED_MIN_KEYS = 24;

export interface PackedRemember {
  t: "rememberPacked";
  /** Every key's recipient, sender and id, back to back. */
  text: string;
  nums: number[] | Float64Array;
}

export function packRemember(r: RememberReq): PackedRemember {
  let text = "";
  const n = r.keys.length * FIELDS;
  const nums = r.keys.length >= TYPED_MIN_KEYS ? new Float64Array(n) : new Array<number>(n);
  let i = 0;
  for (const k of r.keys) {
    text += k.recipient + k.sender + k.msgId;
    nums[i++] = k.recipient.length;
    nums[i++] = k.sender.length;
    nums[i++] = k.msgId.length;
    nums[i++] = k.seq;
    nums[i++] = k.ts;
    if (k.h1 === undefined || k.h2 === undefined) {
      const [h1, h2] = sentKeyHash(k.recipient, k.sender, k.msgId); // a key built without them (not the owner's)
      nums[i++] = h1;
      nums[i++] = h2;
    } else {
      nums[i++] = k.h1;
      nums[i++] = k.h2;
    }
  }
  return { t: "rememberPacked", text, nums };
}

/** The checks a RememberReq's keys get: lengths inside the text, non-empty id, seq ≥ 1, integer ts, hashes in range. */
export function isPackedRememberBody(text: unknown, nums: unknown): boolean {
  if (typeof text !== "string" || !isColumn(nums) || nums.length % FIELDS !== 0) return false;
  let at = 0;
  for (let i = 0; i < nums.length; i += FIELDS) {
    const a = nums[i]!, b = nums[i + 1]!, c = nums[i + 2]!; // no array per key: the writer checks each
    if (!isLength(a) || !isLength(b) || !isLength(c) || c === 0) return false;
    const seq = nums[i + 3]!;
    if (!Number.isSafeInteger(seq) || seq < 1 || !Number.isSafeInteger(nums[i + 4])) return false;
    const h1 = nums[i + 5]!, h2 = nums[i + 6]!;
    if (!Number.isInteger(h1) || h1 < 0 || h1 >= UINT32_END) return false;
    if (!Number.isInteger(h2) || h2 < INT32_MIN || h2 >= INT32_END) return false;
    at += a + b + c;
  }
  return at === text.length;
}

const isLength = (v: number) => Number.isSafeInteger(v) && v >= 0;

/** The number column's two forms (see TYPED_MIN_KEYS). */
export const isColumn = (v: unknown): v is number[] | Float64Array => Array.isArray(v) || v instanceof Float64Array;

/**
 * Calls `each` with every key's recipient, sender and msg_id and the offset of its fields in
 * `nums`, in order, until it returns false: the one reader of the layout (the port's unpack, the
 * writer's tail, a stored pack). Throws "`what` is shorter than its lengths" when they run past the
 * text: a stored pack that was damaged (a port message was checked by isPackedRememberBody first).
 */
export function eachPackedKey(
  text: string,
  nums: ArrayLike<number>,
  each: (recipient: string, sender: string, msgId: string, i: number) => boolean | void,
  what = "a packed remember",
): void {
  let at = 0;
  for (let i = 0; i < nums.length; i += FIELDS) {
    const a = nums[i]!, b = nums[i + 1]!, c = nums[i + 2]!;
    const end = at + a + b + c;
    if (end > text.length) throw new Error(`${what} is shorter than its lengths`);
    if (each(text.slice(at, at + a), text.slice(at + a, at + a + b), text.slice(at + a + b, end), i) === false) return;
    at = end;
  }
}

/** Back to the owner's shape (call only on a checked one). */
export function unpackRemember(p: PackedRemember): RememberReq {
  const keys: SentKey[] = [];
  const nums = p.nums;
  eachPackedKey(p.text, nums, (recipient, sender, msgId, i) => {
    keys.push({ recipient, sender, msgId, seq: nums[i + 3]!, ts: nums[i + 4]!, h1: nums[i + 5]!, h2: nums[i + 6]! });
  });
  return { t: "remember", keys };
}
