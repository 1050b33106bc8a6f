// Login deadlines of the connections that have not logged in yet, in one queue with one timer for
// all of them (issue 14): a timer per connection cost ~0.3 KB of RSS on each open socket. Every
// connection gets the same timeout, so deadlines come in opening order and the queue is a FIFO;
// the timer is armed for its head only. An entry is not removed when its connection logs in or
// closes: the expiry callback checks the connection's state, and the entry goes at its deadline.

/** Pure FIFO of (item, deadline); time is passed in. */
export class DeadlineQueue<T> {
  private items: T[] = [];
  private at: number[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T, deadline: number): void {
    this.items.push(item);
    this.at.push(deadline);
  }

  /** The head's deadline, or null when empty. */
  next(): number | null {
    return this.head < this.items.length ? this.at[this.head]! : null;
  }

  /**
   * Removes and returns the items due at `now`, oldest first. A deadline out of order (the timeout
   * setting changed) waits behind the ones before it: late, never lost.
   */
  takeDue(now: number): T[] {
    const due: T[] = [];
    while (this.head < this.items.length && this.at[this.head]! <= now) {
      due.push(this.items[this.head]!);
      this.items[this.head++] = undefined as T; // let a closed connection go before the compaction
    }
    if (this.head === this.items.length) this.clear();
    else if (this.head >= COMPACT_AFTER && this.head * 2 > this.items.length) this.compact();
    return due;
  }

  clear(): void {
    this.items = [];
    this.at = [];
    this.head = 0;
  }

  private compact(): void {
    this.items = this.items.slice(this.head);
    this.at = this.at.slice(this.head);
    this.head = 0;
  }
}

/** Taken entries kept at the front before the arrays are copied down (amortised, not per entry). */
const COMPACT_AFTER = 1024;

/**
 * The queue plus its one timer: `expire` is called for each item whose deadline passed (it checks
 * whether the item still waits for its login). The timer never keeps the thread alive.
 */
export class LoginDeadlines<T> {
  private readonly q = new DeadlineQueue<T>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private armedAt = Infinity;

  constructor(private readonly expire: (item: T) => void, private readonly clock = () => performance.now()) {}

  get size(): number {
    return this.q.size;
  }

  add(item: T, timeoutMs: number): void {
    this.q.push(item, this.clock() + timeoutMs);
    this.arm();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedAt = Infinity;
    this.q.clear();
  }

  private arm(): void {
    const next = this.q.next();
    if (next === null || (this.timer && this.armedAt <= next)) return;
    if (this.timer) clearTimeout(this.timer);
    this.armedAt = next;
    this.timer = setTimeout(() => this.fire(), Math.max(0, next - this.clock()));
    (this.timer as { unref?: () => void }).unref?.();
  }

  private fire(): void {
    this.timer = null;
    this.armedAt = Infinity;
    for (const item of this.q.takeDue(this.clock())) this.expire(item);
    this.arm();
  }
}
