// The frame of a cross-node batch (pure): a version byte, the publisher's stamp (its global shard
// address, epoch and count: see port-seq.ts), its wall clock when published (port-age.ts), then the batch array in the structured-
// clone format that Bun's postMessage uses (carries Uint8Array bodies without copying through
// base64). Anything else — wrong version, undecodable bytes, not an array, an item the caller's
// guard rejects — is garbage: counted and dropped, never trusted.

import { deserialize, serialize } from "bun:jsc";
import type { Stamp } from "./port-seq.ts";

/** Bumped whenever the frame or the items' shape changes; a node drops batches of another version (counted). */
export const PORT_FORMAT_VERSION = 3;
/** Version byte + source address (int32) + epoch (uint32) + count (uint32) + sent at (float64 ms). */
const HEADER_BYTES = 21;
/** The stamp of a batch sent without one (tests, tools): never part of a sequence check. */
export const NO_STAMP: Stamp = { src: -1, epoch: 0, n: 0 };

export function encodeBatch(items: readonly unknown[], stamp: Stamp = NO_STAMP): Uint8Array {
  const body = new Uint8Array(serialize(items));
  const out = new Uint8Array(body.byteLength + HEADER_BYTES);
  out[0] = PORT_FORMAT_VERSION;
  out.set(body, HEADER_BYTES);
  return stampBatch(out, stamp);
}

/** Writes `stamp` and the send time into an encoded batch's header (in place; returns the same bytes). */
export function stampBatch(bytes: Uint8Array, stamp: Stamp, sentAt = Date.now()): Uint8Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  v.setInt32(1, stamp.src);
  v.setUint32(5, stamp.epoch);
  v.setUint32(9, stamp.n);
  v.setFloat64(13, sentAt);
  return bytes;
}

export interface Decoded<T> {
  items: T[];
  /** Items (or whole batches, counted as 1) that failed validation. */
  garbage: number;
  /** The publisher's stamp (absent on a batch that is garbage as a whole). */
  stamp?: Stamp;
  /** The publisher's wall clock when it published the batch (epoch ms). */
  sentAt?: number;
}

export function decodeBatch<T>(bytes: Uint8Array, guard: (x: unknown) => x is T): Decoded<T> {
  if (bytes.byteLength < HEADER_BYTES + 1 || bytes[0] !== PORT_FORMAT_VERSION) return { items: [], garbage: 1 };
  let raw: unknown;
  try {
    raw = deserialize(bytes.subarray(HEADER_BYTES));
  } catch {
    return { items: [], garbage: 1 };
  }
  if (!Array.isArray(raw)) return { items: [], garbage: 1 };
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const stamp = { src: v.getInt32(1), epoch: v.getUint32(5), n: v.getUint32(9) };
  const items: T[] = [];
  let garbage = 0;
  for (const x of raw) {
    if (guard(x)) items.push(x);
    else garbage++;
  }
  return { items, garbage, stamp, sentAt: v.getFloat64(13) };
}

/** The subject of one shard of one node: iris.node.<node>.<shard>. Node ids are subject-safe. */
export function nodeSubject(node: string, shard: number): string {
  return `iris.node.${node}.${shard}`;
}
