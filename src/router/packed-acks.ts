// A commit's "stored" acks for one shard as one message (issue 14, the offline flood). The writer
// answered each stored row with its own `sent` object, and cloning and checking one object per row
// on both sides of the port cost several µs per row. Here a run of them travels as one string of
// ids and one array of numbers; the shard's port turns them back into `sent` messages, in order,
// so handlers see exactly what they saw before. Pure functions: build, check, expand.

import type { SentMsg } from "./wire.ts";

export interface PackedAcks {
  t: "storedAcks";
  /** Every acked id, back to back. */
  ids: string;
  /** Per ack: conn, id length. */
  nums: Float64Array;
}

/** A run of stored acks being gathered for one shard (see the writer's flush). */
export class StoredAcksBuilder {
  private ids = "";
  private readonly nums: number[] = [];

  add(conn: number, id: string): void {
    this.ids += id;
    this.nums.push(conn, id.length);
  }

  done(): PackedAcks {
    return { t: "storedAcks", ids: this.ids, nums: Float64Array.from(this.nums) };
  }
}

/** Well-formed: pairs of integers, id lengths ≥ 0 that add up to the ids' length. */
export function isPackedAcks(v: unknown): v is PackedAcks {
  if (typeof v !== "object" || v === null) return false;
  const p = v as Record<string, unknown>;
  if (p.t !== "storedAcks" || typeof p.ids !== "string" || !(p.nums instanceof Float64Array)) return false;
  if (p.nums.length % 2 !== 0) return false;
  let at = 0;
  for (let i = 0; i < p.nums.length; i += 2) {
    const len = p.nums[i + 1]!;
    if (!Number.isSafeInteger(p.nums[i]!) || !Number.isSafeInteger(len) || len < 0) return false;
    at += len;
  }
  return at === p.ids.length;
}

/** The acks as the `sent` messages they stand for, in order (call only on a checked one). */
export function expandAcks(p: PackedAcks, each: (m: SentMsg) => void): void {
  let at = 0;
  for (let i = 0; i < p.nums.length; i += 2) {
    const id = p.ids.slice(at, at += p.nums[i + 1]!);
    each({ t: "sent", conn: p.nums[i]!, id, status: "stored" });
  }
}
