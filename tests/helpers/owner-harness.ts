// An owner actor wired to plain arrays: what it sends to shards and to the writer is recorded in
// order, at a fixed clock and without memory pressure. For unit tests of the owner's decisions.

import type { OwnerLimits } from "../../src/limits.ts";
import { Owner } from "../../src/router/owner.ts";
import type { PortMsg, WriterReq } from "../../src/router/wire.ts";

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
