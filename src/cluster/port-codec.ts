// The frame of a cross-node batch (pure): a version byte, then the batch array in the structured-
// clone format that Bun's postMessage uses (carries Uint8Array bodies without copying through
// base64). Anything else — wrong version, undecodable bytes, not an array, an item the caller's
// guard rejects — is garbage: counted and dropped, never trusted.

import { deserialize, serialize } from "bun:jsc";

/** Bumped whenever the items' shape changes; a node drops batches of another version (counted). */
export const PORT_FORMAT_VERSION = 1;

export function encodeBatch(items: readonly unknown[]): Uint8Array {
  const body = new Uint8Array(serialize(items));
  const out = new Uint8Array(body.byteLength + 1);
  out[0] = PORT_FORMAT_VERSION;
  out.set(body, 1);
  return out;
}

export interface Decoded<T> {
  items: T[];
  /** Items (or whole batches, counted as 1) that failed validation. */
  garbage: number;
}

export function decodeBatch<T>(bytes: Uint8Array, guard: (x: unknown) => x is T): Decoded<T> {
  if (bytes.byteLength < 2 || bytes[0] !== PORT_FORMAT_VERSION) return { items: [], garbage: 1 };
  let raw: unknown;
  try {
    raw = deserialize(bytes.subarray(1));
  } catch {
    return { items: [], garbage: 1 };
  }
  if (!Array.isArray(raw)) return { items: [], garbage: 1 };
  const items: T[] = [];
  let garbage = 0;
  for (const x of raw) {
    if (guard(x)) items.push(x);
    else garbage++;
  }
  return { items, garbage };
}

/** The subject of one shard of one node: iris.node.<node>.<shard>. Node ids are subject-safe. */
export function nodeSubject(node: string, shard: number): string {
  return `iris.node.${node}.${shard}`;
}
