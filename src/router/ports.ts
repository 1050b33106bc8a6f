// The port mesh of one shard: a MessagePort to every live peer shard and one to the storage
// writer. Outbound traffic is batched (one postMessage per destination per tick); inbound batches
// are validated item by item (garbage is counted and dropped); messages for this same shard run
// through a trampoline without a thread hop, so handlers never re-enter each other.

import { GARBAGE_LOG_EVERY, GARBAGE_LOG_FIRST } from "../limits.ts";
import { log } from "../observe/log.ts";
import type { SlotMetrics } from "../observe/metrics.ts";
import { type AppendReq, isPortMsg, type PortMsg, type WriterReq } from "./wire.ts";
import type { FilterImage } from "./sent-filter.ts";
import { pageBuffers } from "./frame-page.ts";
import { packRemember } from "./packed-keys.ts";
import { packAppends, type PackedAppends } from "./packed-appends.ts";
import { expandAcks, isPackedAcks } from "./packed-acks.ts";

export class PortMesh {
  private readonly peers: (MessagePort | null)[];
  private writer: MessagePort | null = null;
  private readonly outbox = new Map<number, PortMsg[]>();
  private writerOut: (WriterReq | PackedAppends)[] = [];
  /** Appends made since the last other request: they cross as one message (packed-appends.ts). */
  private appendRun: AppendReq[] = [];
  private flushScheduled = false;
  private readonly local: PortMsg[] = [];
  private dispatching = false;
  private garbageLogged = 0;

  constructor(
    private readonly self: number,
    shards: number,
    private readonly metrics: SlotMetrics,
    /** Runs one validated message on this shard. */
    private readonly handle: (m: PortMsg) => void,
    /** Called after each flush (e.g. to publish gauges). */
    private readonly afterFlush: () => void = () => {},
  ) {
    this.peers = new Array(shards).fill(null);
  }

  setPeer(k: number, port: MessagePort): void {
    this.peers[k] = port;
    port.onmessage = (e) => this.receive(e.data);
  }

  /**
   * A (new) writer. Requests still queued were meant for the one that died: they are dropped like
   * those it never read, and the owner re-sends what must survive (owner.writerRestarted), so no
   * request from before the restart can overtake that replay. The replay's answers come from the
   * new writer only.
   */
  setWriter(port: MessagePort): void {
    // Whatever the dead writer still had on its way to us is dropped too: a late "committed n"
    // from it would count the owner's replayed requests as committed before the new writer has.
    if (this.writer) {
      this.writer.onmessage = null;
      this.writer.close();
    }
    this.writer = port;
    this.writerOut = [];
    this.appendRun = [];
    port.onmessage = (e) => this.receive(e.data);
  }

  /**
   * A channel to peer k, perhaps a restarted one: `first` posts what must reach it ahead of anything
   * queued for it meanwhile (re-attaches, and sends that died with it, re-posted in their order),
   * then the queue follows. A send read in the same turn as the new channel, after the peer died,
   * was queued before the re-posts of earlier sends, and was numbered ahead of them (per-sender
   * order, seen with a stalled shard: chaos --stalls).
   */
  reconnectPeer(k: number, port: MessagePort, first: () => void): void {
    const queued = this.outbox.get(k) ?? [];
    this.outbox.set(k, []);
    this.setPeer(k, port);
    first();
    for (const m of queued) this.post(k, m);
  }

  /** Peer k died: drop its port and what was queued for it (its state is rebuilt on restart). */
  dropPeer(k: number): void {
    this.peers[k] = null;
    this.outbox.delete(k);
  }

  /** Validates a batch from any port; garbage is counted and dropped, never thrown. */
  receive(batch: unknown): void {
    if (!Array.isArray(batch)) return this.garbage(batch);
    for (const m of batch) {
      if (isPortMsg(m)) this.dispatch(m);
      else if (isPackedAcks(m)) expandAcks(m, this.dispatchOne);
      else this.garbage(m);
    }
  }

  private garbage(v: unknown): void {
    this.metrics.add("garbage");
    const n = this.metrics.get("garbage");
    if (this.garbageLogged < GARBAGE_LOG_FIRST || n % GARBAGE_LOG_EVERY === 0) {
      this.garbageLogged++;
      log.warn("dropped invalid port message", { shard: this.self, total: n, type: typeof v });
    }
  }

  private readonly dispatchOne = (m: PortMsg): void => this.dispatch(m);

  private dispatch(m: PortMsg): void {
    this.local.push(m);
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (let i = 0; i < this.local.length; i++) {
        const msg = this.local[i]!;
        try {
          this.handle(msg);
        } catch (e) {
          // A bug on one message must not take the shard (and its connections) down.
          log.error("message handler failed", { t: msg.t, error: e as Error });
        }
      }
    } finally {
      this.local.length = 0;
      this.dispatching = false;
    }
  }

  /** To shard k's handlers: run here if k is this shard, else batch for this tick. */
  post(k: number, m: PortMsg): void {
    if (k === this.self) return this.dispatch(m);
    let q = this.outbox.get(k);
    if (!q) this.outbox.set(k, q = []);
    q.push(m);
    this.scheduleFlush();
  }

  toWriter(m: WriterReq): void {
    // Packed: far cheaper to clone than an object (and a body) per key or row.
    if (m.t === "append") this.appendRun.push(m);
    else {
      this.closeAppendRun();
      this.writerOut.push(m.t === "remember" ? packRemember(m) : m);
    }
    this.scheduleFlush();
  }

  /** The appends since the last other request go as one message, in their place in the order. */
  private closeAppendRun(): void {
    if (this.appendRun.length === 0) return;
    this.writerOut.push(packAppends(this.appendRun));
    this.appendRun = [];
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.flushScheduled = false;
    for (const [k, q] of this.outbox) {
      if (q.length === 0) continue;
      const port = this.peers[k];
      if (port) {
        const moved = pageBuffersIn(q);
        if (moved === null) port.postMessage(q);
        else port.postMessage(q, moved);
        this.metrics.add("crossShardMsgs", q.length);
      } // else: peer is down; its owner state is rebuilt on restart, senders retry unacked sends
      this.outbox.set(k, []);
    }
    this.closeAppendRun();
    if (this.writerOut.length && this.writer) {
      this.writer.postMessage(this.writerOut, packedBuffers(this.writerOut));
      this.writerOut = [];
    }
    this.afterFlush();
  }
}

/**
 * Backlog pages' buffers, moved to the session's shard instead of cloned: the owner never reads a
 * page again once it is posted (a lent page never leaves its shard), and a clone left the owner's
 * copy of every page for its collector (chaos `oom`: 100+ MiB per shard in a crowd's drain).
 */
function pageBuffersIn(q: readonly PortMsg[]): ArrayBuffer[] | null {
  let moved: Set<ArrayBuffer> | null = null; // a buffer listed twice fails the whole post
  for (const m of q) {
    if (m.t !== "deliver" || m.frames === undefined) continue;
    for (const b of pageBuffers(m.frames)) (moved ??= new Set()).add(b);
  }
  return moved === null ? null : [...moved];
}

/**
 * The packed appends' two buffers and a packed remember's number column (when it is a typed
 * array), moved to the writer instead of cloned (issue 14): Bun 1.4.5 clones a typed array at
 * ~3.5 ns a byte (a 600-key remember's 24 KB column: ~60 µs of the shard's turn) and moves one for
 * a fixed ~2-8 µs. They are made for this one message (packAppends copies every body into its own
 * buffer, packRemember builds a new column) and the shard never reads them again; the owner keeps
 * its own append and remember requests for a replay.
 */
export function packedBuffers(out: readonly (WriterReq | PackedAppends)[]): ArrayBuffer[] {
  const moved: ArrayBuffer[] = [];
  for (const m of out) {
    if (m.t === "appends") moved.push(m.nums.buffer as ArrayBuffer, m.bodies.buffer as ArrayBuffer);
    else if (m.t === "rememberPacked" && m.nums instanceof Float64Array) moved.push(m.nums.buffer as ArrayBuffer);
    else if (m.t === "filterImage") moved.push(...imageBuffers(m.image));
  }
  return moved;
}

/**
 * A filter image's bit words, moved at shutdown (the shard's filter is done with them): cloned, a
 * 64 MiB image took 424 ms of the shutdown (session 35). Each buffer once: a buffer listed twice
 * fails the whole post.
 */
function imageBuffers(image: FilterImage): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const g of image.gens) for (const f of g.filters) buffers.add(f.bits.buffer as ArrayBuffer);
  return [...buffers];
}
