// Member-list updates that need async work before they apply (learning a new node's ordinal)
// must apply in the order they were made. Run concurrently, an older list whose lookup finished
// last overwrote a newer one: at a 3-node startup a shard applied "up iris1,iris2,iris3" and then,
// in the same millisecond, the older "up iris1,iris2", and kept it (membership saw no further
// change), so its users of iris3 were placed elsewhere and stored rows stayed unread.

/** Runs updates one at a time, in call order; an update a newer one overtook while it waited is skipped. */
export class LatestUpdate<T> {
  private tail: Promise<void> = Promise.resolve();
  private made = 0;

  constructor(
    private readonly apply: (value: T) => Promise<void>,
    private readonly onError: (e: unknown) => void,
  ) {}

  /** Queues `value`; resolves when it has applied, or was skipped for a newer one. */
  push(value: T): Promise<void> {
    const n = ++this.made;
    this.tail = this.tail.then(() => (n === this.made ? this.apply(value) : undefined)).catch(this.onError);
    return this.tail;
  }

  /** Resolves once every update queued so far (and any queued meanwhile) has run. */
  async settled(): Promise<void> {
    let t: Promise<void> | null = null;
    while (t !== this.tail) {
      t = this.tail;
      await t;
    }
  }
}
