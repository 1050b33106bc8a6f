// The dedupe tail's index (sent-ids.ts): for each 53-bit key hash, the tail position of its first
// record. Open addressing over one Int32Array (position + 1, 0 empty) whose hashes are the tail's
// own columns, kept up to date on every add.
//
// Issue 14: the tail was scanned per lookup, and after 64 lookups since the last run it got a Map
// by hash, built from the whole tail (20.7 ms for a full one) and then kept with a Map entry per
// logged key. At saturation a shard's filter asks the writer ~150 times a second, so that Map was
// built about every other run: #tailFirst was 28% of the writer's samples in steady state. An add
// here is one probe into an array two to four times the tail's size; a lookup one more. Pure.

import type { KeyColumns } from "./key-columns.ts";

/** Entries of a new index (it doubles as the tail grows; at most half full). */
const FIRST_ENTRIES = 1024;

export class TailIndex {
  #at = new Int32Array(FIRST_ENTRIES);
  #size = 0;

  /**
   * `tail`: the columns indexed (its 53-bit hashes `h`, read by position; the array may be replaced
   * as it grows). A probe starts at the hash's low bits: `h & mask` takes them exactly (ToInt32 of
   * a safe integer is its low 32 bits), so records with the same hash start at the same slot.
   */
  constructor(private readonly tail: Pick<KeyColumns, "h">) {}

  /** Hashes held. */
  get size(): number {
    return this.#size;
  }

  /** Indexes the tail's record at `pos` unless its hash already has a first position. */
  add(pos: number): void {
    if (2 * (this.#size + 1) > this.#at.length) this.#grow();
    const h = this.tail.h[pos]!;
    const mask = this.#at.length - 1;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const v = this.#at[i]!;
      if (v === 0) {
        this.#at[i] = pos + 1;
        this.#size++;
        return;
      }
      if (this.tail.h[v - 1] === h) return; // the first record of this hash stays
    }
  }

  /** The first position of 53-bit hash `h` (key-columns.ts foldHash), or -1. */
  first(h: number): number {
    const mask = this.#at.length - 1;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const v = this.#at[i]!;
      if (v === 0) return -1;
      if (this.tail.h[v - 1] === h) return v - 1;
    }
  }

  /** Forgets every hash (the memory is kept for the next tail). */
  clear(): void {
    if (this.#size === 0) return;
    this.#at.fill(0);
    this.#size = 0;
  }

  #grow(): void {
    const old = this.#at;
    this.#at = new Int32Array(2 * old.length);
    const mask = this.#at.length - 1;
    for (let k = 0; k < old.length; k++) {
      const v = old[k]!;
      if (v === 0) continue;
      let i = this.tail.h[v - 1]! & mask;
      while (this.#at[i] !== 0) i = (i + 1) & mask;
      this.#at[i] = v;
    }
  }
}
