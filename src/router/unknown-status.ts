// Status queries for users the owner holds no state for (never seen, or swept as idle). Such a
// user is offline, so the answer is its last-seen time from the store: read once per user in
// flight (a `load` that reserves nothing), and kept a short while in a small bounded cache. No
// per-user owner state is created, so a client asking about many unknown ids costs almost nothing.

import { STATUS_CACHE_MAX, STATUS_CACHE_TTL_MS } from "../limits.ts";
import type { LoadedReply, PortMsg, StatusQuery, WriterReq } from "./wire.ts";

export interface UnknownStatusIO {
  toShard(shard: number, m: PortMsg): void;
  toWriter(m: WriterReq): void;
  now(): number;
}

/** A `loaded` reply to a read that reserved nothing: the range is empty (seqLimit < seqBase). */
export const isLookupReply = (m: LoadedReply): boolean => m.seqLimit < m.seqBase;

export class UnknownStatus {
  /** Users read from the store right now, with the queries that wait for the answer. */
  private readonly inFlight = new Map<string, StatusQuery[]>();
  /** Recent answers, oldest first (Map insertion order): user → last seen and when it was read. */
  private readonly cache = new Map<string, { lastSeen: number; at: number }>();
  lookups = 0;

  /** Entries in the bounded answer cache (a gauge: it must never grow past STATUS_CACHE_MAX). */
  get cached(): number {
    return this.cache.size;
  }

  constructor(private readonly io: UnknownStatusIO) {}

  lookup(q: StatusQuery): void {
    const hit = this.cache.get(q.user);
    if (hit && this.io.now() - hit.at < STATUS_CACHE_TTL_MS) return this.reply(q, hit.lastSeen);
    const waiting = this.inFlight.get(q.user);
    if (waiting) return void waiting.push(q);
    this.inFlight.set(q.user, [q]);
    this.lookups++;
    this.io.toWriter({ t: "load", user: q.user, reserve: 0 });
  }

  /**
   * The store answered. `viaOwner` takes the queries instead when the user gained owner state
   * meanwhile (it logged in or was sent a message): then the owner's presence is the truth.
   */
  answer(m: LoadedReply, hasBox: boolean, viaOwner: (q: StatusQuery) => void): void {
    const queries = this.inFlight.get(m.user);
    if (!queries) return;
    this.inFlight.delete(m.user);
    if (hasBox) return queries.forEach(viaOwner);
    this.remember(m.user, m.lastSeen);
    for (const q of queries) this.reply(q, m.lastSeen);
  }

  /** The writer restarted: the reads in flight died with it, so ask again. */
  writerRestarted(): void {
    for (const user of this.inFlight.keys()) this.io.toWriter({ t: "load", user, reserve: 0 });
  }

  private remember(user: string, lastSeen: number): void {
    this.cache.delete(user);
    this.cache.set(user, { lastSeen, at: this.io.now() });
    if (this.cache.size > STATUS_CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
  }

  private reply(q: StatusQuery, lastSeen: number): void {
    this.io.toShard(q.shard, { t: "statusReply", req: q.req, user: q.user, online: false, lastSeen });
  }
}
