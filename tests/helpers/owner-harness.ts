// An owner actor wired to plain arrays: what it sends to shards and to the writer is recorded in
// order, at a fixed clock and without memory pressure. For unit tests of the owner's decisions.

import type { OwnerLimits } from "../../src/limits.ts";
import { Owner } from "../../src/router/owner.ts";
import type { PortMsg, WriterReq } from "../../src/router/wire.ts";

/** Small limits the owner unit tests share (frozen: a test varies them by spreading a copy). */
export const SMALL_LIMITS: Readonly<OwnerLimits> = Object.freeze({
  maxPending: 4,
  pageSize: 3,
  pageBytes: 1 << 20,
  maxFetches: 8,
  pendingSpillMs: 1000,
  seqBlock: 10,
  recentIds: 100,
  holdback: 2,
  slowTimeoutMs: 5000,
  dedupeWindowMs: 60_000,
});

export interface RecordingOwner {
  o: Owner;
  toShard: PortMsg[];
  toWriter: WriterReq[];
}

/** `owns`: the cluster placement check (absent: this owner owns every user, as on one node). */
export function recordingOwner(limits: OwnerLimits, now = 1000, owns?: (user: string) => boolean): RecordingOwner {
  const toShard: PortMsg[] = [];
  const toWriter: WriterReq[] = [];
  const o = new Owner({
    self: 0,
    shards: 1,
    toShard: (_k, m) => toShard.push(m),
    toWriter: (m) => toWriter.push(m),
    now: () => now,
    underPressure: () => false,
    ...(owns ? { owns } : {}),
  }, limits);
  return { o, toShard, toWriter };
}
