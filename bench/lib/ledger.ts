// The exactly-once check of a load-generator run: every message id a worker sends in a run is
// one consecutive integer, and sender and recipient live in the same worker, so one byte per id
// says how often that message arrived. After the run: ids never delivered (lost or refused) and
// ids delivered more than once (duplicates). Pure bookkeeping, no I/O.

export interface LedgerTally {
  /** Message ids sent in the run. */
  ids: number;
  /** Sent ids with no delivery. */
  missing: number;
  /** Sent ids delivered two or more times. */
  duplicated: number;
  /** Deliveries beyond the first, summed over the duplicated ids (capped at 254 per id). */
  extraDeliveries: number;
}

const INITIAL_IDS = 1 << 16;

export class Ledger {
  private counts = new Uint8Array(INITIAL_IDS);
  private first = 0;

  /** Starts a run: ids above `lastIdBefore` belong to it. */
  start(lastIdBefore: number): void {
    this.first = lastIdBefore;
    this.counts = new Uint8Array(INITIAL_IDS);
  }

  /** One delivery of message `id` (ids of earlier runs and non-ids are ignored). */
  got(id: number): void {
    const k = id - this.first - 1;
    if (!(k >= 0)) return; // NaN or an earlier run's id
    if (k >= this.counts.length) {
      const bigger = new Uint8Array(Math.max(this.counts.length * 2, k + 1));
      bigger.set(this.counts);
      this.counts = bigger;
    }
    if (this.counts[k]! < 255) this.counts[k]!++;
  }

  /** The run's figures, given the last id it sent. */
  tally(lastIdSent: number): LedgerTally {
    const ids = Math.max(0, lastIdSent - this.first);
    let missing = 0;
    let duplicated = 0;
    let extraDeliveries = 0;
    for (let k = 0; k < ids; k++) {
      const n = k < this.counts.length ? this.counts[k]! : 0;
      if (n === 0) missing++;
      else if (n > 1) (duplicated++, (extraDeliveries += n - 1));
    }
    return { ids, missing, duplicated, extraDeliveries };
  }
}

/** Sums the tallies of several workers. */
export function sumTallies(ts: LedgerTally[]): LedgerTally {
  const out: LedgerTally = { ids: 0, missing: 0, duplicated: 0, extraDeliveries: 0 };
  for (const t of ts) {
    out.ids += t.ids;
    out.missing += t.missing;
    out.duplicated += t.duplicated;
    out.extraDeliveries += t.extraDeliveries;
  }
  return out;
}
