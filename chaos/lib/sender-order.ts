// Per-sender order as the chaos clients see it: ids are "<sender>-<n>" with n growing per sender,
// and the SDK sends to a recipient in order, so each recipient must get a sender's ids with n
// rising. Fed first deliveries only (a repeat is a duplicate, counted where deliveries are counted).

/** The number n of an id "<sender>-<n>" (NaN for any other id, which never counts as a reorder). */
export function idNumber(id: string): number {
  return Number(id.slice(id.lastIndexOf("-") + 1));
}

export class SenderOrder {
  /** "sender>recipient" → the highest n delivered so far. */
  private readonly highest = new Map<string, number>();
  count = 0;
  /** The first few reorders, "recipient: id after sender-n". */
  readonly examples: string[] = [];

  constructor(private readonly maxExamples = 10) {}

  /** Records a first delivery of `id` from `from` to `to`; true when it came after a later one. */
  see(to: string, from: string, id: string): boolean {
    const n = idNumber(id);
    if (Number.isNaN(n)) return false;
    const pair = `${from}>${to}`;
    const highest = this.highest.get(pair) ?? -1;
    if (n < highest) {
      this.count++;
      if (this.examples.length < this.maxExamples) this.examples.push(`${to}: ${id} after ${from}-${highest}`);
      return true;
    }
    this.highest.set(pair, n);
    return false;
  }
}
