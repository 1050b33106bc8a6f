// The cross-node port: like the cross-shard ports, items for one destination (node, shard) are
// buffered and sent as one NATS publish per destination per tick. Core NATS keeps per-publisher
// order on a subject, which gives the same FIFO chain per (sender shard -> owner) as a Worker port.
// Every inbound item is validated; garbage is counted and dropped.

import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { decodeBatch, encodeBatch, NO_STAMP, nodeSubject, stampBatch } from "./port-codec.ts";
import { PortCounts, PortSeqs } from "./port-seq.ts";
import { PortAges } from "./port-age.ts";
import { log } from "../observe/log.ts";

/** Largest batch payload before a flush happens early (NATS default max_payload is 1 MiB). */
export const MAX_BATCH_BYTES = 512 * 1024;
/** Publish failures logged one by one; later ones only counted (port counters in /metrics). */
const PUBLISH_ERRORS_LOGGED = 20;
/** Every destination gets its last count again this often, so that a lost last batch is noticed. */
export const SYNC_EVERY_MS = 1000;

export interface PortCounters {
  batchesOut: number;
  itemsOut: number;
  batchesIn: number;
  itemsIn: number;
  garbage: number;
  publishErrors: number;
  /** Items too big for one publish, split in two (port-split.ts). */
  splits: number;
  /** Count jumps seen: batches from some publisher were lost on the way (see port-seq.ts). */
  gaps: number;
  /** Batches dropped because they arrived later than down-after (port-age.ts). */
  stale: number;
}

export class NodePort<T> {
  readonly counters: PortCounters = {
    batchesOut: 0,
    itemsOut: 0,
    batchesIn: 0,
    itemsIn: 0,
    garbage: 0,
    publishErrors: 0,
    splits: 0,
    gaps: 0,
    stale: 0,
  };
  private readonly out = new Map<string, T[]>();
  private scheduled = false;
  private readonly subs: Subscription[] = [];
  private readonly counts = new PortCounts();
  private readonly seqs = new PortSeqs();
  private readonly ages: PortAges;
  private syncTimer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly guard: (x: unknown) => x is T,
    /** This publisher's global shard address (-1: batches go out unstamped, never checked). */
    private readonly self = -1,
    /** Batches from publisher `src` were lost: the caller resynchronises what it served. */
    private readonly onGap: (src: number) => void = () => {},
    /** Batches older than this on arrival are dropped as lost (port-age.ts; Infinity: never). */
    maxAgeMs = Infinity,
    /** An item too big for one publish, as smaller items meaning the same (null: it cannot be split). */
    private readonly split: (item: T) => T[] | null = () => null,
  ) {
    this.ages = new PortAges(maxAgeMs);
    if (self >= 0) this.syncTimer = setInterval(() => this.sync(), SYNC_EVERY_MS);
  }

  /** Repeats the last count to every destination (an empty batch). */
  private sync(): void {
    for (const [subject, stamp] of this.counts.syncs(this.self)) {
      try {
        this.nc.publish(subject, encodeBatch([], stamp));
      } catch { /* closed: the next sync or batch carries the count */ }
    }
  }

  /** Queues an item for a node's shard; the batch leaves at the end of this tick. */
  send(node: string, shard: number, item: T): void {
    const subject = nodeSubject(node, shard);
    let q = this.out.get(subject);
    if (!q) this.out.set(subject, q = []);
    q.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Publishes every queued batch now: one publish per destination. */
  flush(): void {
    this.scheduled = false;
    for (const [subject, items] of this.out) {
      this.publish(subject, items);
    }
    this.out.clear();
  }

  private publish(subject: string, items: T[]): void {
    const bytes = encodeBatch(items);
    if (bytes.byteLength > MAX_BATCH_BYTES) {
      if (items.length > 1) {
        const half = items.length >> 1;
        this.publish(subject, items.slice(0, half));
        this.publish(subject, items.slice(half));
        return;
      }
      const parts = this.split(items[0]!);
      if (parts !== null && parts.length > 1) {
        this.counters.splits++;
        return this.publish(subject, parts);
      }
    }
    const stamp = this.self >= 0 ? this.counts.next(this.self, subject) : NO_STAMP;
    try {
      this.nc.publish(subject, stampBatch(bytes, stamp));
    } catch (e) {
      // A closed connection, or one item above the server's max_payload that cannot be split. Its
      // count stays used: the receiver sees the gap at our next batch or sync and resynchronises
      // what we served it (port-seq.ts). Freeing the count hid the loss: a delivery lost this way
      // was then settled by the client's cumulative ack of a later one (docs/CLUSTER.md).
      this.counters.publishErrors++;
      if (this.counters.publishErrors <= PUBLISH_ERRORS_LOGGED) {
        log.warn(
          `cluster port: a batch of ${items.length} to ${subject} (${bytes.byteLength} bytes) not published: ${
            (e as Error).message
          }`,
        );
      }
      return;
    }
    this.counters.batchesOut++;
    this.counters.itemsOut += items.length;
  }

  /** Receives this node's shard's batches; `onItems` sees only validated items, in order. */
  listen(node: string, shard: number, onItems: (items: T[]) => void): void {
    const sub = this.nc.subscribe(nodeSubject(node, shard), {
      callback: (err, m) => {
        if (err) return;
        const { items, garbage, stamp, sentAt } = decodeBatch(m.data, this.guard);
        if (stamp && sentAt !== undefined && this.ages.stale(stamp.src, sentAt, Date.now())) {
          return void this.counters.stale++; // as if lost: the next batch from it shows the gap
        }
        if (stamp && stamp.src >= 0 && this.seqs.check(stamp, items.length + garbage === 0) === "gap") {
          this.counters.gaps++;
          this.onGap(stamp.src); // before this batch's items: they come after the loss
        }
        this.counters.batchesIn++;
        this.counters.itemsIn += items.length;
        this.counters.garbage += garbage;
        if (items.length > 0) onItems(items);
      },
    });
    this.subs.push(sub);
  }

  close(): void {
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.flush();
    for (const s of this.subs) s.unsubscribe();
    this.subs.length = 0;
  }
}
