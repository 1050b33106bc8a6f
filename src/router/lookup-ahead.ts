// Dedupe lookups asked ahead for routes that wait in a box (docs/CLUSTER.md, "A liveness fault
// under NATS restarts"). A box looks up one (sender, id) at a time and holds the user's later routes
// behind it, in order. After a cut, a box starts with no memory of ids, and every resent send of
// the senders is one the store may know: a thousand waiting routes took a thousand round trips
// through the shard's reply chain, one after another (25 s in a chaos run at load 3, and senders
// unanswered all that time). So a route that will need a lookup asks for it as it starts waiting;
// the box still takes the answers in its routes' order, and one asked ahead is usually there when
// its route's turn comes. The writer answers lookups in request order, each after every earlier
// request, exactly as before: only the waiting between them goes.

/** Per box: (sender, id) → "asked", or the answer (the seq the store knows, 0 = none). */
type Answers = Map<string, number | "asked">;

const keyOf = (from: string, id: string): string => from + "\0" + id;

export class LookupAhead<Box extends object> {
  private byBox = new WeakMap<Box, Answers>();

  constructor(private readonly maxPerBox: number) {}

  /** True when the caller should send a lookup for (from, id) now (not asked yet, room left). */
  ask(box: Box, from: string, id: string): boolean {
    let a = this.byBox.get(box);
    if (!a) this.byBox.set(box, a = new Map());
    const k = keyOf(from, id);
    if (a.has(k) || a.size >= this.maxPerBox) return false;
    a.set(k, "asked");
    return true;
  }

  /** True when the box has no room for another lookup asked ahead. */
  full(box: Box): boolean {
    return (this.byBox.get(box)?.size ?? 0) >= this.maxPerBox;
  }

  /** True when a lookup was asked ahead for (from, id) (answered or not). */
  has(box: Box, from: string, id: string): boolean {
    return this.byBox.get(box)?.has(keyOf(from, id)) ?? false;
  }

  /** True while a lookup asked ahead for (from, id) has not been answered. */
  asked(box: Box, from: string, id: string): boolean {
    return this.byBox.get(box)?.get(keyOf(from, id)) === "asked";
  }

  /** The answer that came for (from, id), taken (undefined: none yet). */
  take(box: Box, from: string, id: string): number | undefined {
    const a = this.byBox.get(box);
    const v = a?.get(keyOf(from, id));
    if (typeof v !== "number") return undefined;
    a!.delete(keyOf(from, id));
    return v;
  }

  /** A lookup answer: kept if it was asked ahead for this box (others are the box's own). */
  answer(box: Box, from: string, id: string, seq: number): void {
    const a = this.byBox.get(box);
    const k = keyOf(from, id);
    if (a?.get(k) === "asked") a.set(k, seq);
  }

  /** The box waits for nothing any more: what is left (answers no route took) goes. */
  clear(box: Box): void {
    this.byBox.delete(box);
  }

  /** The writer restarted: lookups in flight died with it (they are asked again when their turn comes). */
  reset(): void {
    this.byBox = new WeakMap();
  }
}
