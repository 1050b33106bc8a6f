// Per-recipient order after a refusal (docs/PROTOCOL.md, "Order after a refusal"). The server
// refuses a send with a retryable code (SERVER_BUSY, RATE_LIMITED, STORE_FULL) and keeps the
// connection: nothing of that send was accepted. If each refused send were retried on its own
// back-off, a newer send to the same recipient could be accepted first, and the recipient would
// see them out of order. So a refusal closes its recipient's **lane**:
//
//   lane state  event                                         next
//   (none)      a send to it refused                          backing off  (timer)
//   backing off another send to it refused (it was already    backing off  (it waits its turn)
//               on the wire when the lane closed)
//   backing off back-off over, no send to it still unanswered probing      (oldest send goes alone)
//   probing     the probe refused again                       backing off  (longer)
//   probing     the probe answered for good (acked, or a      (none)       (the rest go, in order)
//               final error)
//
// While a lane exists no other send to that recipient goes on the wire: newer sends wait in the
// client's queue (their promises stay pending, as for any unacked send). Sends to other recipients
// are not held: order is promised per sender and recipient. A new connection forgets every lane,
// because a login resends all unacked sends in their original order anyway.

/** The part of an unacked send the lanes read and write. */
export interface LaneSend {
  readonly id: string;
  readonly to: string;
  /** On the wire and not answered yet (no ack, no refusal). */
  inFlight: boolean;
  /** When it last went on the wire (ms since the epoch). */
  sentAt: number;
}

interface Lane {
  /** Refusals of this lane's head in a row: the back-off doubles with each. */
  failures: number;
  /** The id of the one send on the wire while probing, or null. */
  probe: string | null;
  /** Back-off over: the probe goes as soon as nothing to this recipient is unanswered. */
  ready: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

/** The back-off before a lane's probe: 100 ms after the first refusal, doubling, at most 2 s. */
export const laneBackoffMs = (failures: number): number => Math.min(50 * 2 ** failures, 2000);

export interface LaneIo<S extends LaneSend> {
  /** Every unacked send, oldest first. */
  pending(): Iterable<S>;
  transmit(s: S): void;
  /** True while frames can be sent (online). */
  canSend(): boolean;
}

export class OrderLanes<S extends LaneSend> {
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly io: LaneIo<S>, private readonly staleMs: number) {}

  /** True while sends to `to` must wait in the queue. */
  holds(to: string): boolean {
    return this.lanes.has(to);
  }

  /** How many recipients have a closed lane now (tests, stats). */
  get closed(): number {
    return this.lanes.size;
  }

  /** A retryable refusal of `s`: its lane closes (or stays closed) and backs off. */
  refused(s: S): void {
    s.inFlight = false;
    const lane = this.lanes.get(s.to);
    if (lane && lane.probe !== s.id) {
      // Sent before the lane closed: it waits its turn; the probe may be free to go now.
      if (lane.ready && lane.probe === null) this.probe(s.to);
      return;
    }
    const l = lane ?? { failures: 0, probe: null, ready: false, timer: null };
    this.lanes.set(s.to, l);
    l.failures++;
    l.probe = null;
    l.ready = false;
    if (l.timer) clearTimeout(l.timer);
    l.timer = setTimeout(() => {
      l.timer = null;
      l.ready = true;
      this.probe(s.to);
    }, laneBackoffMs(l.failures));
  }

  /** `s` was answered for good (acked, or refused for good) and left the pending sends. */
  settled(s: S): void {
    const lane = this.lanes.get(s.to);
    if (!lane) return;
    if (lane.probe === s.id) return this.open(s.to);
    if (lane.ready && lane.probe === null) this.probe(s.to);
  }

  /** The resend loop's turn: start probes that waited on a silent send, resend a silent probe. */
  tick(now: number): void {
    for (const [to, lane] of this.lanes) {
      if (!lane.ready) continue;
      if (lane.probe === null) this.probe(to);
      else {
        const p = this.find(to, (s) => s.id === lane.probe);
        if (p && p.sentAt < now - this.staleMs) this.io.transmit(p);
      }
    }
  }

  /** A new connection: forget every lane (the login resends everything in order). */
  reset(): void {
    for (const lane of this.lanes.values()) if (lane.timer) clearTimeout(lane.timer);
    this.lanes.clear();
  }

  /** Sends the oldest unacked send to `to` alone, once nothing to `to` is still unanswered. */
  private probe(to: string): void {
    const lane = this.lanes.get(to);
    if (!lane || !this.io.canSend()) return;
    const silentSince = Date.now() - this.staleMs;
    if (this.find(to, (s) => s.inFlight && s.sentAt >= silentSince)) return; // its answer decides
    const head = this.find(to, () => true);
    if (!head) return this.open(to);
    lane.probe = head.id;
    this.io.transmit(head);
  }

  /** The lane opens: every waiting send to `to` goes, oldest first. */
  private open(to: string): void {
    const lane = this.lanes.get(to);
    if (lane?.timer) clearTimeout(lane.timer);
    this.lanes.delete(to);
    if (!this.io.canSend()) return;
    for (const s of this.io.pending()) if (s.to === to && !s.inFlight) this.io.transmit(s);
  }

  private find(to: string, ok: (s: S) => boolean): S | undefined {
    for (const s of this.io.pending()) if (s.to === to && ok(s)) return s;
    return undefined;
  }
}
