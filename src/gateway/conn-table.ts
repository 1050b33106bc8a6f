// A shard's open connections by number (issue 14: an idle connection's memory). A Map of 10,000
// sessions by number costs ~68 bytes a connection in JSC; this is one array slot (8 bytes) and a
// free list. A connection's number is its slot plus the slot's reuse count times SLOT_STRIDE, so
// numbers stay unique for the shard's life (a late message for a closed connection never reaches
// the one that reuses its slot) and the first connections are numbered 1, 2, 3...

/** Slots per reuse round: numbers are `round * SLOT_STRIDE + slot`, exact in a double up to 2^29 rounds. */
export const SLOT_STRIDE = 2 ** 24;

export interface Numbered {
  readonly conn: number;
}

export class ConnTable<S extends Numbered> {
  /** Index = slot; slot 0 is never used (no connection is numbered 0). */
  private readonly slots: (S | undefined)[] = [undefined];
  /** Times each slot was handed out before, so the next number from it is new. */
  private readonly rounds: number[] = [0];
  /** Slots free for reuse, the most recently freed last. */
  private readonly free: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** The number the next `add` will carry (call `add` with a session that has it). */
  nextNumber(): number {
    const slot = this.free.length > 0 ? this.free[this.free.length - 1]! : this.slots.length;
    if (slot >= SLOT_STRIDE) throw new Error(`conn-table: more than ${SLOT_STRIDE - 1} connections open`);
    return (this.rounds[slot] ?? 0) * SLOT_STRIDE + slot;
  }

  /** Stores `s` under its number, which must be `nextNumber()`'s. */
  add(s: S): void {
    const slot = s.conn % SLOT_STRIDE;
    if (s.conn !== this.nextNumber()) throw new Error(`conn-table: ${s.conn} is not the next number`);
    if (slot === this.slots.length) {
      this.slots.push(s);
      this.rounds.push(0);
    } else {
      this.free.pop();
      this.slots[slot] = s;
    }
    this.#size++;
  }

  get(conn: number): S | undefined {
    const s = this.slots[conn % SLOT_STRIDE];
    return s !== undefined && s.conn === conn ? s : undefined;
  }

  /** False when no connection has this number (closed already, or never). */
  delete(conn: number): boolean {
    const slot = conn % SLOT_STRIDE;
    const s = this.slots[slot];
    if (s === undefined || s.conn !== conn) return false;
    this.slots[slot] = undefined;
    this.rounds[slot]!++;
    this.free.push(slot);
    this.#size--;
    return true;
  }

  /** One past the highest slot ever used: `valuesIn` ranges lie within 1..slotEnd. */
  get slotEnd(): number {
    return this.slots.length;
  }

  /** The open connections in slots lo..hi-1, in slot order; deleting during the walk is safe. */
  *valuesIn(lo: number, hi: number): IterableIterator<S> {
    const slots = this.slots;
    const end = Math.min(hi, slots.length);
    for (let i = Math.max(lo, 1); i < end; i++) {
      const s = slots[i];
      if (s !== undefined) yield s;
    }
  }

  /** Every open connection, in slot order; deleting during the walk is safe. */
  *values(): IterableIterator<S> {
    const slots = this.slots;
    for (let i = 1; i < slots.length; i++) {
      const s = slots[i];
      if (s !== undefined) yield s;
    }
  }
}
