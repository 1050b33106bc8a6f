// Refused sends that must come back in their order (refusal-fence.ts, cluster/dropped-sends.ts):
// ids kept oldest first, unique and bounded, of which only the oldest may pass. Both fences used
// to lift at the first refused id's retry, which let a later send pass ahead of sends they had
// refused meanwhile (docs/CLUSTER.md, "Order at a regain").

export class InOrderIds {
  private readonly ids: string[] = [];
  /** When each id's send was received (its place in the order; Infinity: after every timed one). */
  private readonly ats: number[] = [];
  /** The last id that passed as the oldest. */
  passed = "";

  /** `max`: ids kept at most; beyond, later ones are refused without being waited for. */
  constructor(private readonly max: number) {}

  get size(): number {
    return this.ids.length;
  }

  /** True when `id` is the oldest: it is taken off (it passes). */
  takeOldest(id: string): boolean {
    if (id === "" || this.ids[0] !== id) return false;
    this.ids.shift();
    this.ats.shift();
    this.passed = id;
    return true;
  }

  /**
   * A refused id waits its turn: by `at`, the time its send was received, among the others (a send
   * refused later may have been received earlier: the SDK retries in send order), else behind
   * them all. `first`: it is the oldest again.
   */
  add(id: string, first = false, at = Infinity): void {
    if (id === "" || this.ids.includes(id)) return;
    if (first) {
      this.ids.unshift(id);
      this.ats.unshift(-Infinity);
      return;
    }
    if (this.ids.length >= this.max) return;
    let i = this.ats.length;
    while (i > 0 && this.ats[i - 1]! > at) i--;
    this.ids.splice(i, 0, id);
    this.ats.splice(i, 0, at);
  }

  /** An id that need not be waited for any more (numbered by another path). */
  remove(id: string): void {
    const at = this.ids.indexOf(id);
    if (at >= 0) {
      this.ids.splice(at, 1);
      this.ats.splice(at, 1);
    }
  }
}
